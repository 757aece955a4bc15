package turn

import (
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// FuzzRefuse feeds arbitrary datagrams to the gate in front of pion: it never panics, answers
// only signed TURN requests, and every answer is a well-formed error response (401 or 403) to the
// request's transaction.
func FuzzRefuse(f *testing.F) {
	s, err := New(Config{Addr: "127.0.0.1:0", MinPort: 40201, MaxPort: 40210, Secret: func() string { return "s3cret" },
		AllowPeers: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	cred := s.Issue("", time.Hour, time.Now())
	signed := func(method stun.Method, peer string, password string) []byte {
		m, err := stun.Build(stun.TransactionID, stun.NewType(method, stun.ClassRequest),
			xorPeer(netip.MustParseAddrPort(peer)), stun.NewUsername(cred.Username), stun.NewRealm("telgw"),
			stun.NewNonce("nonce"), stun.NewLongTermIntegrity(cred.Username, "telgw", password), stun.Fingerprint)
		if err != nil {
			f.Fatal(err)
		}
		return m.Raw
	}
	f.Add(signed(stun.MethodCreatePermission, "10.0.0.1:5060", cred.Password))
	f.Add(signed(stun.MethodCreatePermission, "127.0.0.1:5060", cred.Password))
	f.Add(signed(stun.MethodChannelBind, "[fd00::1]:5060", cred.Password))
	f.Add(signed(stun.MethodAllocate, "192.0.2.1:1", "wrong"))
	f.Add(signed(stun.MethodRefresh, "192.0.2.1:1", cred.Password))
	f.Add(signed(stun.MethodCreatePermission, "10.0.0.1:5060", cred.Password)[:40])
	f.Add([]byte{0x40, 0x00, 0x00, 0x04, 'd', 'a', 't', 'a'}) // ChannelData
	src := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	f.Fuzz(func(t *testing.T, b []byte) {
		var out []byte
		answered := s.refuse(b, src, func(res []byte) { out = append([]byte(nil), res...) })
		if !answered {
			if out != nil {
				t.Fatal("wrote an answer but let the request through")
			}
			return
		}
		req := &stun.Message{Raw: append([]byte(nil), b...)}
		if err := req.Decode(); err != nil || !req.Contains(stun.AttrMessageIntegrity) {
			t.Fatalf("answered a message that is not a signed request: %v", err)
		}
		res := &stun.Message{Raw: out}
		if err := res.Decode(); err != nil {
			t.Fatalf("answer does not decode: %v", err)
		}
		var code stun.ErrorCodeAttribute
		if res.TransactionID != req.TransactionID || res.Type.Class != stun.ClassErrorResponse ||
			res.Type.Method != req.Type.Method || code.GetFrom(res) != nil || (code.Code != 401 && code.Code != 403) {
			t.Fatalf("answer %s (%v) to %s", res, code, req)
		}
	})
}
