package turn

import (
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/turn/v4"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newServer(t *testing.T) *Server {
	t.Helper()
	// The relay tests talk to peers on loopback, which only an allow-list opens.
	s, err := New(Config{Addr: "127.0.0.1:0", MinPort: 40000, MaxPort: 40100, Secret: func() string { return "s3cret" },
		AllowPeers: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func allocate(t *testing.T, s *Server, user, pass string) error {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	addr := net.JoinHostPort("127.0.0.1", itoa(s.Port()))
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn,
		Username: user, Password: pass, Realm: "telgw", RTO: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		return err
	}
	defer relay.Close()
	// The relayed address is in the configured range.
	p := relay.LocalAddr().(*net.UDPAddr).Port
	if p < 40000 || p > 40100 {
		t.Errorf("relay port %d outside range", p)
	}
	// And it relays: send from a peer to the relay and read it back through TURN.
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := relay.WriteTo([]byte("hello"), peer.LocalAddr()); err != nil { // creates a permission
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = peer.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, from, err := peer.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("peer read: %q %v", buf[:n], err)
	}
	if _, err := peer.WriteTo([]byte("back"), from); err != nil {
		t.Fatal(err)
	}
	_ = relay.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, _, err = relay.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "back" {
		t.Fatalf("relay read: %q %v", buf[:n], err)
	}
	return nil
}

func itoa(n int) string { return (&net.UDPAddr{Port: n}).String()[1:] }

func TestAllocateWithIssuedCredential(t *testing.T) {
	s := newServer(t)
	c := s.Issue("8:acs:r_u", time.Hour, time.Now())
	if err := allocate(t, s, c.Username, c.Password); err != nil {
		t.Fatalf("allocation with issued credential failed: %v", err)
	}
}

func TestRejectsBadCredentials(t *testing.T) {
	s := newServer(t)
	expired := IssueWith("s3cret", "u", -time.Minute, time.Now())
	wrong := IssueWith("other-secret", "u", time.Hour, time.Now())
	for name, c := range map[string]Credential{"expired": expired, "wrong secret": wrong} {
		// RFC 8489 §9.2.4: an invalid username or MESSAGE-INTEGRITY is 401.
		if err := allocate(t, s, c.Username, c.Password); errCode(err) != 401 {
			t.Errorf("%s: allocation: %v, want 401", name, err)
		}
	}
}

func TestCoturnFormat(t *testing.T) {
	c := IssueWith("secret", "alice", time.Hour, time.Unix(1000, 0))
	if c.Username != "4600:alice" {
		t.Fatalf("username %q", c.Username)
	}
	// Reference: echo -n 4600:alice | openssl dgst -sha1 -hmac secret -binary | base64
	if c.Password != "a3AFq0ZxH8TvdQLL5U+temOYdmc=" {
		t.Fatalf("password %q", c.Password)
	}
}

func TestAllocateOverTCP(t *testing.T) {
	s := newServer(t)
	cred := s.Issue("u", time.Hour, time.Now())
	addr := net.JoinHostPort("127.0.0.1", itoa(s.Port()))
	tc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close() // the pion client does not close the conn it was given
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr, TURNServerAddr: addr, Conn: turn.NewSTUNConn(tc),
		Username: cred.Username, Password: cred.Password, Realm: "telgw",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("TCP allocation: %v", err)
	}
	_ = relay.Close()
}
