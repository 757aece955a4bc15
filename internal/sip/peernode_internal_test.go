package sip

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// FuzzParsePeerHeader: the node-to-node header parser never panics, and whatever it accepts
// has a user, a node and a full-length MAC.
func FuzzParsePeerHeader(f *testing.F) {
	sig := base64.RawURLEncoding.EncodeToString(make([]byte, sha256.Size))
	for _, s := range []string{
		"v1;node=n1;ts=1700000000;user=" + base64.RawURLEncoding.EncodeToString([]byte("8:acs:u")) + ";sig=" + sig,
		"v1;node=n1;ts=1;user=dQ;sig=" + sig,
		"v1;node=;ts=1;user=dQ;sig=" + sig,
		"v1;node=a;node=b;ts=1;user=dQ",
		"v2;node=a;ts=1;user=dQ;sig=" + sig,
		"v1;node=a;ts=-9223372036854775808;user=dQ;sig=" + sig,
		"v1", "", ";;;;", "v1;a=b;c=d;e=f;g=h",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		pc, err := parsePeerHeader(v)
		if err != nil {
			return
		}
		if pc.user == "" || pc.node == "" || len(pc.sig) != sha256.Size {
			t.Fatalf("accepted %q as %+v", v, pc)
		}
	})
}

// TestPeerSignRoundTrip: what one node signs another verifies, with the key it rotated from
// too; a change to any signed header breaks it.
func TestPeerSignRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	old, cur := []byte("old-key-0123456789"), []byte("new-key-0123456789")
	sender := &Peers{Self: "node-b", Keys: func() [][]byte { return [][]byte{old} }, now: clock}
	receiver := &Peers{Self: "node-a", Keys: func() [][]byte { return [][]byte{cur, old} }, now: clock}
	mk := func() *sip.Request {
		req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "+14252000100", Host: "127.0.0.2", Port: 5060})
		req.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "+12125550100", Host: "b"}, Params: sip.NewParams()})
		req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "+14252000100", Host: "a"}, Params: sip.NewParams()})
		cid := sip.CallIDHeader("cid-" + strings.Repeat("x", 8))
		req.AppendHeader(&cid)
		return req
	}
	req := mk()
	sender.sign(req, "8:acs:alice")
	user, node, err := receiver.verify(req)
	if err != nil || user != "8:acs:alice" || node != "node-b" {
		t.Fatalf("verify: %q %q %v", user, node, err)
	}
	if _, _, err := receiver.verify(req); err != errPeerReplay {
		t.Fatalf("second use: %v, want replay", err)
	}
	for name, tamper := range map[string]func(*sip.Request){
		"to":          func(r *sip.Request) { r.To().Address.User = "+14252000199" },
		"from":        func(r *sip.Request) { r.From().Address.User = "+19995550100" },
		"request-uri": func(r *sip.Request) { r.Recipient.User = "+14252000199" },
		"body":        func(r *sip.Request) { r.SetBody([]byte("v=0\r\nc=IN IP4 198.51.100.66\r\n")) },
	} {
		r := mk()
		cid := sip.CallIDHeader("cid-" + name)
		r.RemoveHeader("Call-ID")
		r.AppendHeader(&cid)
		sender.sign(r, "8:acs:alice")
		tamper(r)
		if _, _, err := receiver.verify(r); err != errPeerBad {
			t.Errorf("%s changed: %v, want bad signature", name, err)
		}
	}
	r := mk()
	r.RemoveHeader("Call-ID")
	cid := sip.CallIDHeader("cid-late")
	r.AppendHeader(&cid)
	sender.sign(r, "8:acs:alice")
	now = now.Add(31 * time.Second)
	if _, _, err := receiver.verify(r); err != errPeerStale {
		t.Fatalf("31 s late: %v, want stale", err)
	}
}
