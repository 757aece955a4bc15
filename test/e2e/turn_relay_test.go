package e2e

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"github.com/pion/turn/v4"
)

// TestTURNIsNoOpenRelay runs a real telgw and, as a browser user would, takes TURN credentials
// from /phone/ice and from the networkTraversal API (with the identity's id): a pion TURN client
// allocates with them, but CreatePermission to telgw's own SIP listener, loopback and private
// peers gets 403 (RFC 8656 §9.2); credentials are short-lived; once the identity is deleted its
// credentials get 401 while credentials issued without an identity keep working.
func TestTURNIsNoOpenRelay(t *testing.T) {
	tg := StartTelgw(t, Options{})
	sipAddr := tg.Addrs.SIP
	c := NewClient(t, tg.ConnString)
	res := c.Do(t, "POST", "/identities?api-version=2023-10-01", map[string]any{"createTokenWithScopes": []string{"voip"}})
	if res.Status != 201 {
		t.Fatalf("create identity: %d %s", res.Status, res.Body)
	}
	var ident struct {
		Identity    struct{ ID string }
		AccessToken struct{ Token string }
	}
	res.JSON(t, &ident)

	type iceServer struct {
		URLs       []string `json:"urls"`
		Username   string   `json:"username"`
		Credential string   `json:"credential"`
	}
	var ice struct {
		IceServers []iceServer `json:"iceServers"`
		ExpiresOn  time.Time   `json:"expiresOn"`
	}
	req, _ := http.NewRequest("GET", strings.TrimSuffix(tg.Endpoint, "/")+"/phone/ice", nil)
	req.Header.Set("Authorization", "Bearer "+ident.AccessToken.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	(&Response{Status: resp.StatusCode, Body: body}).JSON(t, &ice)
	if resp.StatusCode != 200 || len(ice.IceServers) == 0 {
		t.Fatalf("no ICE servers from /phone/ice: %d %s", resp.StatusCode, body)
	}
	phone := ice.IceServers[0]
	if !strings.HasSuffix(phone.Username, ":"+ident.Identity.ID) {
		t.Errorf("/phone/ice username %q does not name the identity %s", phone.Username, ident.Identity.ID)
	}
	if life := time.Until(ice.ExpiresOn); life > time.Hour+time.Minute || life < 50*time.Minute {
		t.Errorf("/phone/ice credential lives %s, want the 1h default", life)
	}
	var turnAddr string
	for _, u := range phone.URLs {
		if strings.HasPrefix(u, "turn:") {
			turnAddr = strings.TrimPrefix(strings.SplitN(u, "?", 2)[0], "turn:")
		}
	}

	traversal := func(body map[string]any) iceServer {
		t.Helper()
		res := c.Do(t, "POST", "/networkTraversal/:issueRelayConfiguration?api-version=2022-03-01-preview", body)
		if res.Status != 200 {
			t.Fatalf("issueRelayConfiguration: %d %s", res.Status, res.Body)
		}
		var out struct {
			IceServers []iceServer `json:"iceServers"`
			ExpiresOn  time.Time   `json:"expiresOn"`
		}
		res.JSON(t, &out)
		if life := time.Until(out.ExpiresOn); life > time.Hour+time.Minute {
			t.Errorf("relay credential lives %s, want at most turn.credentialTTL (1h)", life)
		}
		return out.IceServers[0]
	}
	withID := traversal(map[string]any{"id": ident.Identity.ID, "ttl": 172800})
	anonymous := traversal(map[string]any{})

	allocate := func(s iceServer) (*turn.Client, error) {
		t.Helper()
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pc.Close() })
		cl, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: turnAddr, TURNServerAddr: turnAddr, Conn: pc,
			Username: s.Username, Password: s.Credential, RTO: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		if err := cl.Listen(); err != nil {
			t.Fatal(err)
		}
		relay, err := cl.Allocate()
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { _ = relay.Close() })
		return cl, nil
	}
	code := func(err error) int {
		var te *stun.TurnError
		if errors.As(err, &te) {
			return int(te.ErrorCodeAttr.Code)
		}
		return 0
	}
	httpHost := c.Base.Host
	for name, s := range map[string]iceServer{"phone": phone, "traversal": withID} {
		cl, err := allocate(s)
		if err != nil {
			t.Fatalf("%s: allocate: %v", name, err)
		}
		for _, peer := range []string{sipAddr, httpHost, turnAddr, "127.0.0.1:9", "10.0.0.1:5060", "192.168.0.1:5060",
			"169.254.169.254:80", "100.64.0.1:5060", "224.0.0.1:5060"} {
			a, err := net.ResolveUDPAddr("udp4", peer)
			if err != nil {
				t.Fatal(err)
			}
			if got := code(cl.CreatePermission(a)); got != 403 {
				t.Errorf("%s: CreatePermission to %s: code %d, want 403", name, peer, got)
			}
		}
	}

	if res := c.Do(t, "DELETE", "/identities/"+url.PathEscape(ident.Identity.ID)+"?api-version=2023-10-01", nil); res.Status != 204 {
		t.Fatalf("delete identity: %d %s", res.Status, res.Body)
	}
	time.Sleep(5500 * time.Millisecond) // the TURN server caches identity lookups for 5 s
	for name, s := range map[string]iceServer{"phone": phone, "traversal": withID} {
		if _, err := allocate(s); code(err) != 401 {
			t.Errorf("%s: allocate with a deleted identity's credential: %v, want 401", name, err)
		}
	}
	if _, err := allocate(anonymous); err != nil {
		t.Errorf("allocate with a credential issued without an identity: %v", err)
	}
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return []byte(b.String())
}

// TestTURNAllowPeersKeepsTrunksAndListenersOut: with turn.allowPeers opening 127.0.0.0/8 (a LAN
// deployment) a client relays to a UDP echo on loopback, but the configured trunk's IP, a trunk
// added later through the SIP routing API, and telgw's own SIP listener stay refused.
func TestTURNAllowPeersKeepsTrunksAndListenersOut(t *testing.T) {
	dir := t.TempDir()
	cfgPath := dir + "/telgw.yaml"
	cfg := "turn:\n  allowPeers: [\"127.0.0.0/8\"]\nsip:\n  trunks:\n    - name: carrier1\n      address: 127.0.0.2:5070\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := StartTelgw(t, Options{Env: []string{"TELGW_CONFIG=" + cfgPath}})
	sipAddr := tg.Addrs.SIP
	c := NewClient(t, tg.ConnString)
	res := c.Do(t, "POST", "/networkTraversal/:issueRelayConfiguration?api-version=2022-03-01-preview", map[string]any{})
	if res.Status != 200 {
		t.Fatalf("issueRelayConfiguration: %d %s", res.Status, res.Body)
	}
	var relayCfg struct {
		IceServers []struct {
			URLs       []string `json:"urls"`
			Username   string   `json:"username"`
			Credential string   `json:"credential"`
		} `json:"iceServers"`
	}
	res.JSON(t, &relayCfg)
	s := relayCfg.IceServers[0]
	var turnAddr string
	for _, u := range s.URLs {
		if strings.HasPrefix(u, "turn:") {
			turnAddr = strings.TrimPrefix(strings.SplitN(u, "?", 2)[0], "turn:")
		}
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cl, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: turnAddr, TURNServerAddr: turnAddr, Conn: pc,
		Username: s.Username, Password: s.Credential, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := cl.Allocate()
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	defer relay.Close()

	echo, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = echo.WriteTo(buf[:n], from)
		}
	}()
	if _, err := relay.WriteTo([]byte("ping"), echo.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = relay.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, _, err := relay.ReadFrom(buf); err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("echo through the relay inside allowPeers: %q %v", buf[:n], err)
	}

	code := func(peer string) int {
		a, err := net.ResolveUDPAddr("udp4", peer)
		if err != nil {
			t.Fatal(err)
		}
		var te *stun.TurnError
		if err := cl.CreatePermission(a); errors.As(err, &te) {
			return int(te.ErrorCodeAttr.Code)
		} else if err != nil {
			t.Fatalf("CreatePermission %s: %v", peer, err)
		}
		return 0
	}
	if got := code("127.0.0.2:5070"); got != 403 {
		t.Errorf("CreatePermission to the configured trunk: code %d, want 403", got)
	}
	if got := code("127.0.0.4:5060"); got != 0 {
		t.Errorf("CreatePermission inside allowPeers: code %d, want success", got)
	}
	// A trunk added through the ACS SIP routing API is refused within a second or two.
	if r := c.Do(t, "PATCH", "/sip?"+sipRoutingV, map[string]any{"trunks": map[string]any{"127.0.0.5": map[string]any{"sipSignalingPort": 5060}}},
		func(req *http.Request) { req.Header.Set("Content-Type", "application/merge-patch+json") }); r.Status != http.StatusOK {
		t.Fatalf("sip routing: %d %s", r.Status, r.Body)
	}
	time.Sleep(1500 * time.Millisecond)
	if got := code("127.0.0.5:5060"); got != 403 {
		t.Errorf("CreatePermission to a trunk added by the routing API: code %d, want 403", got)
	}
	// telgw's SIP listener: its IP is open here, its port is not. An OPTIONS sent through the relay
	// is dropped by the relay (the unit tests watch the listener's socket itself).
	opts := "OPTIONS sip:" + sipAddr + " SIP/2.0\r\nVia: SIP/2.0/UDP " + relay.LocalAddr().String() + ";branch=z9hG4bK1\r\n" +
		"From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: relay-probe\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	sip, _ := net.ResolveUDPAddr("udp4", sipAddr)
	// Control: sent directly, the same OPTIONS is answered.
	direct, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	if _, err := direct.WriteTo([]byte(strings.Replace(opts, relay.LocalAddr().String(), direct.LocalAddr().String(), 1)), sip); err != nil {
		t.Fatal(err)
	}
	_ = direct.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, _, err := direct.ReadFrom(make([]byte, 1500)); err != nil || n == 0 {
		t.Fatalf("telgw's SIP listener does not answer OPTIONS directly: %v", err)
	}
	if _, err := relay.WriteTo([]byte(opts), sip); err != nil {
		t.Fatal(err)
	}
	_ = relay.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, from, err := relay.ReadFrom(buf); err == nil {
		t.Errorf("telgw's SIP listener answered through the relay from %s: %q", from, buf[:n])
	}
	if got := metric(t, tg.Endpoint, "telgw_turn_relay_dropped_total"); got < 1 {
		t.Errorf("telgw_turn_relay_dropped_total = %v after relaying to the SIP listener, want ≥ 1", got)
	}
}
