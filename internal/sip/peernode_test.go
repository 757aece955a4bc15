package sip_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/sip"
)

var peerKey = []byte("0123456789abcdef0123456789abcdef")

func peers(self string, holders ...sip.PeerNode) *sip.Peers {
	return &sip.Peers{Self: self, Keys: func() [][]byte { return [][]byte{peerKey} },
		Holders: func(context.Context, string) ([]sip.PeerNode, error) { return holders, nil }}
}

// TestPeerNodeCall: two nodes; alice's device is connected to node A, the carrier's call (SIPp)
// reaches node B, which forks it to A over node-to-node SIP; the device answers and echoes the
// carrier's audio through both nodes. B writes the CDR, A none.
func TestPeerNodeCall(t *testing.T) {
	sippPath(t)
	a := newUserEnv(t, nil, nil)
	a.users.Peers = peers("node-a")
	b := newUserEnv(t, []sip.TrunkConfig{carrierTrunk("carrier1", carrierIP, freePort(t, carrierIP))}, nil)
	b.users.Peers = peers("node-b", sip.PeerNode{ID: "node-a", Addr: a.addr})
	b.routeToAlice()
	d := newDevice(t, a, aliceToken, 0)
	if code := d.register(300); code != 200 {
		t.Fatalf("register on A: %d", code)
	}
	b.call(carrierIP, b.scenario("uac.xml"), "+14155550100", otherNumber, "-d", "2000")
	select {
	case <-d.answer:
	default:
		t.Fatal("the device on node A did not answer")
	}
	cdr := b.cdrs.wait(t, 1)[0]
	if cdr.Disposition != "answered" || cdr.To != ourNumber || cdr.EndedBy != "caller" {
		t.Fatalf("node B cdr %+v", cdr)
	}
	if n := d.echoed.Load(); n < 40 {
		t.Fatalf("device echoed %d RTP packets through two nodes, want ≥ 40", n)
	}
	eventually(t, "no active calls on either node", func() bool { return a.svc.ActiveCalls() == 0 && b.svc.ActiveCalls() == 0 })
	if n := len(a.cdrs.all()); n != 0 {
		t.Fatalf("node A wrote %d CDRs for B's call", n)
	}

	// The device hangs up: its BYE reaches node A, A's reaches B (from A's listener, so B's
	// dialog source check takes it), B's reaches the carrier.
	go func() {
		select {
		case ds := <-d.answer:
			time.Sleep(time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = ds.Bye(ctx)
		case <-time.After(20 * time.Second):
		}
	}()
	b.call(carrierIP, b.scenario("uac_callee_bye.xml"), "+14155550100", otherNumber)
	cdr = b.cdrs.wait(t, 2)[1]
	if cdr.Disposition != "answered" || cdr.EndedBy != "callee" {
		t.Fatalf("node B cdr of the call the device hung up: %+v", cdr)
	}
	eventually(t, "no active calls on either node", func() bool { return a.svc.ActiveCalls() == 0 && b.svc.ActiveCalls() == 0 })
}

// TestPeerNodeRefused: a node-to-node INVITE without a valid, fresh, unreplayed signature is
// refused with 403 and rings nothing; so is one to a node in no cluster.
func TestPeerNodeRefused(t *testing.T) {
	a := newUserEnv(t, nil, nil)
	a.users.Peers = peers("node-a")
	lone := newUserEnv(t, nil, nil)
	d := newDevice(t, a, aliceToken, 0)
	if code := d.register(300); code != 200 {
		t.Fatalf("register: %d", code)
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("attacker"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ua.Close() })
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	const body = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	bodyHash := sha256.Sum256([]byte(body))
	sign := func(key []byte, node string, ts int64, user, cid string) string {
		m := hmac.New(sha256.New, key)
		for _, s := range []string{"v1", node, strconv.FormatInt(ts, 10), user, cid, otherNumber, ourNumber, ourNumber, base64.RawURLEncoding.EncodeToString(bodyHash[:])} {
			m.Write([]byte(s + "\n"))
		}
		return "v1;node=" + node + ";ts=" + strconv.FormatInt(ts, 10) + ";user=" + base64.RawURLEncoding.EncodeToString([]byte(user)) +
			";sig=" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	dua := &sipgo.DialogUA{Client: cli, ContactHDR: sipmsg.ContactHeader{Address: sipmsg.Uri{Scheme: "sip", User: "x", Host: "127.0.0.1"}}}
	send := func(to, cid, hdr string) int {
		t.Helper()
		req := sipmsg.NewRequest(sipmsg.INVITE, sipmsg.Uri{Scheme: "sip", User: ourNumber, Host: hostOf(to), Port: portOf(to)})
		req.AppendHeader(sipmsg.NewHeader("From", "<sip:"+otherNumber+"@127.0.0.1>;tag="+sipmsg.GenerateTagN(8)))
		req.AppendHeader(sipmsg.NewHeader("To", "<sip:"+ourNumber+"@127.0.0.1>"))
		c := sipmsg.CallIDHeader(cid)
		req.AppendHeader(&c)
		req.AppendHeader(sipmsg.NewHeader("X-Telgw-Node", hdr))
		req.AppendHeader(sipmsg.NewHeader("Content-Type", "application/sdp"))
		req.SetBody([]byte(body))
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		dlg, err := dua.WriteInvite(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		defer dlg.Close()
		err = dlg.WaitAnswer(ctx, sipgo.AnswerOptions{})
		var dr *sipgo.ErrDialogResponse
		if errors.As(err, &dr) {
			return dr.Res.StatusCode
		}
		if err != nil {
			t.Fatal(err)
		}
		_ = dlg.Ack(ctx)
		_ = dlg.Bye(ctx)
		return 200
	}
	cases := []struct {
		name, to, cid, hdr string
	}{
		{"wrong key", a.addr, "c1", sign([]byte("guess"), "node-x", now, alice, "c1")},
		{"stale", a.addr, "c2", sign(peerKey, "node-x", now-120, alice, "c2")},
		{"future", a.addr, "c3", sign(peerKey, "node-x", now+120, alice, "c3")},
		{"signed for another call", a.addr, "c4", sign(peerKey, "node-x", now, alice, "c-other")},
		{"malformed", a.addr, "c5", "v1;node=x;ts=1;user=@@;sig=zz"},
		{"empty", a.addr, "c6", "v1"},
		{"no cluster", lone.addr, "c7", sign(peerKey, "node-x", now, alice, "c7")},
	}
	for _, c := range cases {
		if code := send(c.to, c.cid, c.hdr); code != 403 {
			t.Errorf("%s: %d, want 403", c.name, code)
		}
	}
	select {
	case <-d.answer:
		t.Fatal("a refused node-to-node INVITE rang the device")
	default:
	}
	// A replay of a good INVITE under a Call-ID already used is refused too. (The first one is
	// good: it rings the device, which answers; the test ends the call by closing the device.)
	good := sign(peerKey, "node-x", now, alice, "c8")
	if code := send(a.addr, "c8", good); code != 200 {
		t.Fatalf("a good node-to-node INVITE: %d, want 200 (the device answers)", code)
	}
	<-d.answer
	if code := send(a.addr, "c8", good); code != 403 {
		t.Fatalf("replayed INVITE: %d, want 403", code)
	}
}
