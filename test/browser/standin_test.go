package browser

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/telgw/telgw/internal/bridge/webrtc"
)

// standIn is a tiny SIP-over-WebSocket (RFC 7118) responder standing in for telgw's SIP stack
// until internal/sip serves /sip/ws: it accepts REGISTER carrying a Bearer token, answers the
// browser's INVITE with a real pion WebRTC leg (internal/bridge/webrtc) that echoes RTP back,
// and can call the registered browser with the leg's offer. It is not a SIP implementation:
// one connection, one call at a time, just enough for JsSIP.
type standIn struct {
	t     *testing.T
	eng   *webrtc.Engine
	token string

	mu       sync.Mutex
	conn     net.Conn
	contact  string // the browser's registered Contact URI
	auth     []string
	leg      *webrtc.Leg
	call     *dialog
	digits   []string
	seenEnd  map[uint32]bool
	dtmf     int
	echoDone chan struct{}
	events   chan string
}

type dialog struct {
	callID, fromTag, from, to, remoteTarget string
	cseq                                    int
}

func newStandIn(t *testing.T, eng *webrtc.Engine, token string) *standIn {
	return &standIn{t: t, eng: eng, token: token, events: make(chan string, 32), seenEnd: map[uint32]bool{}}
}

// ServeHTTP upgrades to a WebSocket with the "sip" subprotocol (RFC 7118 §4) and serves it.
func (s *standIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	up := ws.HTTPUpgrader{Protocol: func(p string) bool { return p == "sip" }}
	conn, _, _, err := up.Upgrade(r, w)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.conn = conn
	s.mu.Unlock()
	defer conn.Close()
	for {
		b, err := wsutil.ReadClientText(conn)
		if err != nil {
			return
		}
		s.t.Logf("stand-in ← %.300q", b)
		s.handle(string(b))
	}
}

func (s *standIn) send(msg string) {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c != nil {
		s.t.Logf("stand-in → %.300q", msg)
		_ = wsutil.WriteServerText(c, []byte(msg))
	}
}

type sipMsg struct {
	first   string
	headers map[string][]string
	body    string
}

func parse(raw string) sipMsg {
	head, body, _ := strings.Cut(raw, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	m := sipMsg{first: lines[0], headers: map[string][]string{}, body: body}
	short := map[string]string{"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length", "c": "content-type"}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if full, ok := short[k]; ok {
			k = full
		}
		m.headers[k] = append(m.headers[k], strings.TrimSpace(v))
	}
	return m
}

func (m sipMsg) get(k string) string {
	if v := m.headers[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// response builds a response echoing the request's dialog headers (RFC 3261 §8.2.6.2).
func response(req sipMsg, code int, reason, toTag, extra, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	for _, v := range req.headers["via"] {
		fmt.Fprintf(&b, "Via: %s\r\n", v)
	}
	to := req.get("to")
	if toTag != "" && !strings.Contains(to, "tag=") {
		to += ";tag=" + toTag
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n%s", req.get("from"), to, req.get("call-id"), req.get("cseq"), extra)
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

func uriOf(nameAddr string) string {
	if i := strings.Index(nameAddr, "<"); i >= 0 {
		if j := strings.Index(nameAddr[i:], ">"); j > 0 {
			return nameAddr[i+1 : i+j]
		}
	}
	u, _, _ := strings.Cut(nameAddr, ";")
	return u
}

func (s *standIn) handle(raw string) {
	m := parse(raw)
	method, _, _ := strings.Cut(m.first, " ")
	if strings.HasPrefix(m.first, "SIP/2.0 ") {
		s.onResponse(m)
		return
	}
	s.mu.Lock()
	s.auth = append(s.auth, method+" "+m.get("authorization"))
	s.mu.Unlock()
	if method != "ACK" && m.get("authorization") != "Bearer "+s.token {
		s.send(response(m, 401, "Unauthorized", "", "WWW-Authenticate: Bearer realm=\"telgw\"\r\n", ""))
		return
	}
	switch method {
	case "REGISTER":
		contact := m.get("contact")
		s.mu.Lock()
		s.contact = uriOf(contact)
		s.mu.Unlock()
		s.send(response(m, 200, "OK", "reg", "Contact: <"+uriOf(contact)+">;expires=300\r\n", ""))
		s.events <- "registered"
	case "INVITE":
		leg, answer, err := s.eng.Answer(context.Background(), m.body, webrtc.LegOptions{CallID: m.get("call-id")})
		if err != nil {
			s.send(response(m, 488, "Not Acceptable Here", "x", "", ""))
			s.events <- "488 " + err.Error()
			return
		}
		s.startEcho(leg)
		s.send(response(m, 200, "OK", "standin", "Contact: <sip:standin@127.0.0.1;transport=ws>\r\nContent-Type: application/sdp\r\n", answer))
		s.events <- "answered"
	case "BYE":
		s.send(response(m, 200, "OK", "", "", ""))
		s.hangupLeg()
		s.events <- "bye"
	case "ACK":
	default:
		s.send(response(m, 200, "OK", "", "", ""))
	}
}

// callBrowser sends an INVITE carrying telgw's offer to the registered browser (RFC 7118 §5:
// the request goes down the registered WebSocket).
func (s *standIn) callBrowser() {
	leg, offer, err := s.eng.Offer(context.Background(), webrtc.LegOptions{CallID: "inbound"})
	if err != nil {
		s.t.Error(err)
		return
	}
	s.mu.Lock()
	s.leg = leg
	d := &dialog{callID: "inbound-call-1", fromTag: "carrier", from: "<sip:+15550001111@127.0.0.1>", to: "<" + s.contact + ">", remoteTarget: s.contact, cseq: 1}
	s.call = d
	s.mu.Unlock()
	s.send(fmt.Sprintf("INVITE %s SIP/2.0\r\nVia: SIP/2.0/WSS standin.invalid;branch=z9hG4bK-inv1\r\nMax-Forwards: 70\r\n"+
		"From: %s;tag=%s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\nContact: <sip:standin@127.0.0.1;transport=ws>\r\n"+
		"Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", d.remoteTarget, d.from, d.fromTag, d.to, d.callID, len(offer), offer))
}

func (s *standIn) onResponse(m sipMsg) {
	code := strings.Fields(m.first)[1]
	if !strings.Contains(m.get("cseq"), "INVITE") {
		return
	}
	s.events <- "invite " + code
	if code != "200" {
		return
	}
	s.mu.Lock()
	d, leg := s.call, s.leg
	if d != nil {
		d.to = m.get("to")
		if c := m.get("contact"); c != "" {
			d.remoteTarget = uriOf(c)
		}
	}
	s.mu.Unlock()
	if d == nil || leg == nil {
		return
	}
	s.send(fmt.Sprintf("ACK %s SIP/2.0\r\nVia: SIP/2.0/WSS standin.invalid;branch=z9hG4bK-ack1\r\nMax-Forwards: 70\r\n"+
		"From: %s;tag=%s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n", d.remoteTarget, d.from, d.fromTag, d.to, d.callID))
	if err := leg.SetAnswer(m.body); err != nil {
		s.t.Errorf("SetAnswer: %v", err)
		return
	}
	s.startEcho(leg)
}

// startEcho reads the browser's RTP and sends it straight back, counting DTMF events.
func (s *standIn) startEcho(leg *webrtc.Leg) {
	s.mu.Lock()
	s.leg = leg
	s.echoDone = make(chan struct{})
	done := s.echoDone
	s.mu.Unlock()
	go func() {
		defer close(done)
		for {
			p, err := leg.ReadPacket()
			if err != nil {
				return
			}
			if m := leg.Media(); m.HasDTMF() && p.PayloadType == m.DTMFPayloadType {
				s.mu.Lock()
				s.dtmf++
				// RFC 4733 §2.5.1.4: the end packet is sent three times; count each event once.
				if d, err := webrtc.ParseDTMF(p.Payload); err == nil && d.End && !s.seenEnd[p.Timestamp] {
					s.seenEnd[p.Timestamp] = true
					s.digits = append(s.digits, d.Digit())
				}
				s.mu.Unlock()
			}
			_ = leg.WritePacket(p)
		}
	}()
}

func (s *standIn) hangupLeg() {
	s.mu.Lock()
	leg, done := s.leg, s.echoDone
	s.mu.Unlock()
	if leg != nil {
		_ = leg.Close()
	}
	if done != nil {
		<-done
	}
}

func (s *standIn) wait(t *testing.T, prefix string, within time.Duration) string {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev := <-s.events:
			if strings.HasPrefix(ev, prefix) {
				return ev
			}
		case <-deadline:
			t.Fatalf("stand-in: no %q event", prefix)
		}
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
