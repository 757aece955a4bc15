package turn

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"github.com/pion/turn/v4"
)

// startServer runs a TURN server with cfg's policy fields on loopback.
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.Addr, cfg.MinPort, cfg.MaxPort = "127.0.0.1:0", 40101, 40200
	cfg.Secret = func() string { return "s3cret" }
	s, err := New(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// turnClient is a pion TURN client with an allocation on s, over UDP or TCP.
type turnClient struct {
	*turn.Client
	relay net.PacketConn
	addr  net.Addr
	cred  Credential
}

func dialTURN(t *testing.T, s *Server, transport string, cred Credential) (*turnClient, error) {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", itoa(s.Port()))
	var conn net.PacketConn
	if transport == "udp" {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pc.Close() })
		conn = pc
	} else {
		tc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tc.Close() })
		conn = turn.NewSTUNConn(tc)
	}
	c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn,
		Username: cred.Username, Password: cred.Password, Realm: "telgw", RTO: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = relay.Close() })
	srv, _ := net.ResolveUDPAddr("udp4", addr)
	return &turnClient{Client: c, relay: relay, addr: srv, cred: cred}, nil
}

func mustDial(t *testing.T, s *Server, transport string) *turnClient {
	t.Helper()
	c, err := dialTURN(t, s, transport, s.Issue("", time.Hour, time.Now()))
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	return c
}

func errCode(err error) int {
	var te *stun.TurnError
	if errors.As(err, &te) {
		return int(te.ErrorCodeAttr.Code)
	}
	return 0
}

// channelBind sends a ChannelBind request (RFC 8656 §12.1) for peer through c's connection and
// returns the response's error code (0 on success), checking the response's MESSAGE-INTEGRITY.
func (c *turnClient) channelBind(t *testing.T, peer netip.AddrPort) int {
	t.Helper()
	// A request without credentials draws a 401 carrying the nonce (RFC 8489 §9.2.4).
	probe, _ := stun.Build(stun.TransactionID, stun.NewType(stun.MethodCreatePermission, stun.ClassRequest),
		xorPeer(netip.MustParseAddrPort("192.0.2.1:1")), stun.Fingerprint)
	res, err := c.PerformTransaction(probe, c.addr, false)
	if err != nil {
		t.Fatal(err)
	}
	var nonce stun.Nonce
	if err := nonce.GetFrom(res.Msg); err != nil {
		t.Fatalf("no nonce in %s: %v", res.Msg, err)
	}
	integrity := stun.NewLongTermIntegrity(c.cred.Username, "telgw", c.cred.Password)
	req, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodChannelBind, stun.ClassRequest),
		xorPeer(peer), channelNumber(0x4000), stun.NewUsername(c.cred.Username), stun.NewRealm("telgw"), nonce,
		integrity, stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	res, err = c.PerformTransaction(req, c.addr, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := integrity.Check(res.Msg); err != nil {
		t.Errorf("ChannelBind response integrity: %v", err)
	}
	if res.Msg.Type.Class == stun.ClassSuccessResponse {
		return 0
	}
	var code stun.ErrorCodeAttribute
	_ = code.GetFrom(res.Msg)
	return int(code.Code)
}

type xorPeerSetter netip.AddrPort

func xorPeer(ap netip.AddrPort) stun.Setter { return xorPeerSetter(ap) }

func (x xorPeerSetter) AddTo(m *stun.Message) error {
	ap := netip.AddrPort(x)
	a := stun.XORMappedAddress{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}
	return a.AddToAs(m, stun.AttrXORPeerAddress)
}

type channelNumber uint16

func (n channelNumber) AddTo(m *stun.Message) error {
	m.Add(stun.AttrChannelNumber, []byte{byte(n >> 8), byte(n), 0, 0})
	return nil
}

func udpAddr(s string) *net.UDPAddr {
	return net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s))
}

// udpEcho answers every datagram with the same bytes, on loopback.
func udpEcho(t *testing.T) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	return pc
}

// TestRefusesSpecialPeers: by default CreatePermission and ChannelBind to loopback, private,
// link-local, CGNAT, multicast, unspecified and broadcast peers get 403 over UDP and TCP. No
// datagram is sent to any of these addresses: a permission carries none.
func TestRefusesSpecialPeers(t *testing.T) {
	sip, err := net.ListenPacket("udp4", "127.0.0.1:0") // stands for telgw's SIP listener
	if err != nil {
		t.Fatal(err)
	}
	defer sip.Close()
	s := startServer(t, Config{Guarded: func() Guarded {
		return Guarded{Listeners: []netip.AddrPort{sip.LocalAddr().(*net.UDPAddr).AddrPort()}}
	}})
	peers := []string{"127.0.0.1:5060", sip.LocalAddr().String(), "10.1.2.3:5060", "172.16.0.1:5060",
		"192.168.1.1:5060", "169.254.169.254:80", "100.64.0.1:5060", "224.0.0.1:5060", "239.255.255.250:1900",
		"0.0.0.0:5060", "255.255.255.255:5060", "[::1]:5060", "[fd00::1]:5060", "[fe80::1]:5060", "[::ffff:10.0.0.1]:5060"}
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			c := mustDial(t, s, transport)
			for _, p := range peers {
				if code := errCode(c.CreatePermission(udpAddr(p))); code != 403 {
					t.Errorf("CreatePermission %s: code %d, want 403", p, code)
				}
				if code := c.channelBind(t, netip.MustParseAddrPort(p)); code != 403 {
					t.Errorf("ChannelBind %s: code %d, want 403", p, code)
				}
			}
		})
	}
}

// TestAllowPeersOpensRangeButNotOwnListeners: with turn.allowPeers holding 127.0.0.0/8 a client
// relays to a UDP echo on loopback and back, while telgw's own listener (and a trunk) on loopback
// stay refused: ChannelBind gets 403 and datagrams sent under an IP permission never arrive.
func TestAllowPeersOpensRangeButNotOwnListeners(t *testing.T) {
	sip, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sip.Close()
	sipAP := sip.LocalAddr().(*net.UDPAddr).AddrPort()
	trunk := netip.MustParseAddrPort("127.0.0.2:5060")
	var mu sync.Mutex
	trunks := []netip.AddrPort{}
	s := startServer(t, Config{AllowPeers: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Guarded: func() Guarded {
			mu.Lock()
			defer mu.Unlock()
			return Guarded{Listeners: []netip.AddrPort{sipAP}, Trunks: trunks}
		}})
	echo := udpEcho(t)
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			c := mustDial(t, s, transport)
			// The allowed range relays both ways (checked over UDP; pion's client relays
			// unreliably over TCP).
			for i := range 3 {
				if transport == "tcp" {
					break
				}
				if _, err := c.relay.WriteTo([]byte("ping"), echo.LocalAddr()); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 64)
				_ = c.relay.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, from, err := c.relay.ReadFrom(buf)
				if err != nil || string(buf[:n]) != "ping" || from.String() != echo.LocalAddr().String() {
					t.Fatalf("echo %d through the relay: %q from %v, %v", i, buf[:n], from, err)
				}
			}
			// The SIP listener's IP is allowed (an IP permission covers every port) but its port
			// is not: ChannelBind is refused and datagrams are dropped.
			if code := c.channelBind(t, sipAP); code != 403 {
				t.Errorf("ChannelBind to the SIP listener: code %d, want 403", code)
			}
			if _, err := c.relay.WriteTo([]byte("INVITE sip:x SIP/2.0\r\n\r\n"), sip.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			_ = sip.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if n, from, err := sip.ReadFrom(make([]byte, 1500)); err == nil {
				t.Errorf("the SIP listener got %d bytes from %s through the relay", n, from)
			}
			// A trunk added later (routing change) is refused whole, allowPeers or not.
			mu.Lock()
			trunks = []netip.AddrPort{trunk}
			mu.Unlock()
			time.Sleep(guardRefresh + 100*time.Millisecond)
			if code := errCode(c.CreatePermission(udpAddr("127.0.0.2:9"))); code != 403 {
				t.Errorf("CreatePermission to a trunk's IP: code %d, want 403", code)
			}
			if err := c.CreatePermission(udpAddr("127.0.0.3:9")); err != nil {
				t.Errorf("CreatePermission inside allowPeers: %v", err)
			}
			// One refused peer among allowed ones refuses the whole request (RFC 8656 §9.2).
			if code := errCode(c.CreatePermission(udpAddr("127.0.0.3:9"), udpAddr("10.0.0.1:9"))); code != 403 {
				t.Errorf("mixed CreatePermission: code %d, want 403", code)
			}
			mu.Lock()
			trunks = nil
			mu.Unlock()
			time.Sleep(guardRefresh + 100*time.Millisecond)
		})
	}
}

// fakeIdentities is an identity store in a map.
type fakeIdentities struct {
	mu      sync.Mutex
	ids     map[string]bool
	lookups int
}

func (f *fakeIdentities) IdentityExists(_ context.Context, id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups++
	return f.ids[id], nil
}

func (f *fakeIdentities) del(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.ids, id)
}

// TestDeletedIdentityCredentials: a credential issued for an identity allocates while the
// identity exists and gets 401 once it is deleted (after the short lookup cache); a credential
// issued without an identity keeps working.
func TestDeletedIdentityCredentials(t *testing.T) {
	ids := &fakeIdentities{ids: map[string]bool{"8:acs:r_alice": true, "8:acs:r_bob": true}}
	s := startServer(t, Config{Identities: ids, IdentityCacheTTL: 200 * time.Millisecond})
	alice := s.Issue("8:acs:r_alice", time.Hour, time.Now())
	if _, err := dialTURN(t, s, "udp", alice); err != nil {
		t.Fatalf("allocate for an existing identity: %v", err)
	}
	gone := s.Issue("8:acs:r_gone", time.Hour, time.Now())
	if _, err := dialTURN(t, s, "udp", gone); errCode(err) != 401 {
		t.Errorf("allocate for an unknown identity: %v, want 401", err)
	}
	ids.del("8:acs:r_alice")
	time.Sleep(300 * time.Millisecond)
	for _, transport := range []string{"udp", "tcp"} {
		if _, err := dialTURN(t, s, transport, alice); errCode(err) != 401 {
			t.Errorf("%s: allocate for a deleted identity: %v, want 401", transport, err)
		}
	}
	if _, err := dialTURN(t, s, "udp", s.Issue("", time.Hour, time.Now())); err != nil {
		t.Errorf("allocate without an identity: %v", err)
	}
	// Lookups are cached: many requests of one identity within the TTL are one lookup.
	s = startServer(t, Config{Identities: ids, IdentityCacheTTL: time.Minute})
	ids.mu.Lock()
	ids.lookups = 0
	ids.mu.Unlock()
	bob := s.Issue("8:acs:r_bob", time.Hour, time.Now())
	for range 3 {
		if _, err := dialTURN(t, s, "udp", bob); err != nil {
			t.Fatal(err)
		}
	}
	ids.mu.Lock()
	defer ids.mu.Unlock()
	if ids.lookups != 1 {
		t.Errorf("%d identity lookups for 3 allocations, want 1 (cached)", ids.lookups)
	}
}

// TestIssueTTL: Issue caps lifetimes at the configured credentialTTL and uses it for 0.
func TestIssueTTL(t *testing.T) {
	s := startServer(t, Config{CredentialTTL: 10 * time.Minute})
	now := time.Unix(1_000_000, 0)
	for in, want := range map[time.Duration]time.Duration{0: 10 * time.Minute, time.Minute: time.Minute,
		time.Hour: 10 * time.Minute, -time.Second: 10 * time.Minute} {
		if got := s.Issue("u", in, now).ExpiresOn.Sub(now); got != want {
			t.Errorf("Issue(%s): lifetime %s, want %s", in, got, want)
		}
	}
	if _, err := New(Config{Addr: "127.0.0.1:0", Secret: func() string { return "x" }, CredentialTTL: 49 * time.Hour},
		slog.New(slog.DiscardHandler), nil); err == nil {
		t.Error("credentialTTL above 48h accepted")
	}
}

func TestIsSpecialPeer(t *testing.T) {
	t.Parallel()
	for ip, want := range map[string]bool{
		"127.0.0.1": true, "10.0.0.1": true, "172.31.255.255": true, "192.168.0.1": true, "169.254.169.254": true,
		"100.64.0.1": true, "100.127.255.255": true, "224.0.0.251": true, "0.0.0.0": true, "255.255.255.255": true,
		"::": true, "::1": true, "fc00::1": true, "fd12::1": true, "fe80::1": true, "ff02::1": true,
		"::ffff:127.0.0.1": true, "64:ff9b::a00:1": true, "2002:a00:1::": true,
		"8.8.8.8": false, "100.128.0.1": false, "172.32.0.1": false, "2606:4700::1111": false,
	} {
		if got := IsSpecialPeer(netip.MustParseAddr(ip)); got != want {
			t.Errorf("IsSpecialPeer(%s) = %v, want %v", ip, got, want)
		}
	}
}
