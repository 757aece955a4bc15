package e2e

import (
	"errors"
	"net"
	"net/http"
	"net/url"
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
	sipAddr := freeAddr(t)
	tg := StartTelgw(t, Options{Env: []string{"TELGW_SIP_ADDR=" + sipAddr}})
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
