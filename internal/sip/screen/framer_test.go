package screen

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// framed is what a framer made of an input: the frames it passed, in order, the messages it
// answered (or dropped) and went on, and the verdict that ended the stream, if any.
type framed struct {
	passed []string
	kept   []Verdict
	all    []string // passed and kept messages, in order
	bad    *Verdict
}

// runFramer feeds data to f in chunks of the sizes cut returns and collects the frames.
func runFramer(f *Framer, data []byte, cut func(left int) int) framed {
	var out framed
	for len(data) > 0 && out.bad == nil {
		n := min(max(cut(len(data)), 1), len(data))
		f.Push(data[:n])
		data = data[n:]
		for fr, ok := f.Next(); ok && out.bad == nil; fr, ok = f.Next() {
			switch {
			case fr.bad != nil && fr.keep:
				out.kept = append(out.kept, *fr.bad)
			case fr.bad != nil:
				out.bad = fr.bad
				continue
			default:
				out.passed = append(out.passed, string(fr.Hand()))
			}
			out.all = append(out.all, string(fr.data))
		}
	}
	return out
}

func whole(left int) int { return left }
func byByte(int) int     { return 1 }

// TestStreamFramer: what the stream screen passes to sipgo and what it answers, fed at once
// and byte by byte.
func TestStreamFramer(t *testing.T) {
	t.Parallel()
	const (
		hdr  = "Via: SIP/2.0/TCP 192.0.2.1:5062;branch=z9hG4bK-st\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: st-1\r\nCSeq: 7 OPTIONS\r\nMax-Forwards: 70\r\n"
		opt  = "OPTIONS sip:b@example.com SIP/2.0\r\n" + hdr + "Content-Length: 0\r\n\r\n"
		optL = "OPTIONS sip:b@example.com SIP/2.0\r\n" + hdr + "l: 0\r\n\r\n"
		res  = "SIP/2.0 200 OK\r\n" + hdr + "Content-Length: 0\r\n\r\n"
	)
	inv := streamInvite()
	for _, tc := range []struct {
		name, in string
		passed   []string
		code     int    // of the verdict that closes the stream; 0: none; -1: dropped
		why      string // substring of the verdict's why
		kept     int    // code of a message answered while the stream goes on
	}{
		{name: "OPTIONS", in: opt, passed: []string{opt}},
		{name: "compact Content-Length", in: optL, passed: []string{optL}},
		{name: "INVITE with a body", in: inv, passed: []string{inv}},
		{name: "pipelined", in: opt + inv + opt, passed: []string{opt, inv, opt}},
		{name: "response", in: res, passed: []string{res}},
		{name: "body still arriving", in: inv[:len(inv)-3]},
		{name: "header still arriving", in: opt[:40]},
		{name: "ping", in: "\r\n\r\n", passed: []string{"\r\n\r\n"}},
		{name: "ping still arriving", in: "\r\n\r"},
		{name: "pong", in: "\r\n" + opt, passed: []string{"\r\n", opt}},
		{name: "ping, pong, message", in: "\r\n\r\n\r\n" + opt, passed: []string{"\r\n\r\n", "\r\n", opt}},
		{name: "NUL padding", in: "\x00\x00" + opt, passed: []string{"\x00\x00", opt}},
		{name: "no Content-Length", in: strings.TrimSuffix(opt, "Content-Length: 0\r\n\r\n") + "\r\n", code: 400, why: "no Content-Length"},
		{name: "bad Content-Length", in: strings.Replace(opt, "Length: 0", "Length: 1x", 1), code: 400, why: "malformed Content-Length"},
		{name: "negative Content-Length", in: strings.Replace(opt, "Length: 0", "Length: -1", 1), code: 400, why: "malformed Content-Length"},
		{name: "conflicting Content-Length", in: strings.Replace(opt, "\r\n\r\n", "\r\nl: 4\r\n\r\nabcd", 1), code: 400, why: "conflicting"},
		{name: "body over the limit", in: strings.Replace(opt, "Length: 0", "Length: 70000", 1), code: 413, why: "exceeds the limit"},
		{name: "header over the limit", in: strings.Replace(opt, "Max-Forwards", "X-Pad: "+strings.Repeat("a", 70000)+"\r\nMax-Forwards", 1), code: 400, why: "header section longer"},
		{name: "line without a colon", in: strings.Replace(opt, "Max-Forwards: 70", "Garbage", 1), code: 400, why: "without a colon"},
		{name: "good then garbled", in: opt + strings.Replace(opt, "To: <sip:b@example.com>", "To: <sip:b@example.com", 1), passed: []string{opt}, code: 400, why: "To header"},
		{name: "bare LF", in: strings.ReplaceAll(opt, "\r\n", "\n"), code: 400, why: "CRLF"},
		{name: "SIP/3.0", in: strings.Replace(opt, "SIP/2.0\r\n", "SIP/3.0\r\n", 1) + opt, passed: []string{opt}, kept: 505},
		{name: "garbled SIP/3.0", in: strings.Replace(strings.Replace(opt, "SIP/2.0\r\n", "SIP/3.0\r\n", 1), "Max-Forwards: 70", "Garbage", 1), code: 505, why: "SIP/3.0"},
		{name: "garbled ACK", in: strings.Replace(strings.ReplaceAll(opt, "OPTIONS", "ACK"), "Max-Forwards: 70", "Garbage", 1), code: -1, why: "never answered"},
		{name: "garbled response", in: strings.Replace(res, "Max-Forwards: 70", "Garbage", 1), code: -1, why: "malformed response"},
		{name: "response without Content-Length", in: strings.Replace(res, "Content-Length: 0\r\n", "", 1), code: -1, why: "no Content-Length"},
		{name: "HTTP", in: "GET / HTTP/1.1\r\nHost: x\r\n\r\n", code: -1, why: "not a SIP message"},
		{name: "no Via to answer by", in: strings.Replace(strings.Replace(opt, "Length: 0", "Length: x", 1), "Via", "X-Via", 1), code: -1, why: "no Via"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, mode := range []struct {
				name string
				cut  func(int) int
			}{{"whole", whole}, {"by byte", byByte}} {
				got := runFramer(NewFramer(sip.NewParser()), []byte(tc.in), mode.cut)
				sep := "|"
				if mode.name != "whole" {
					sep = "" // NUL padding is passed as it comes
				}
				if strings.Join(got.passed, sep) != strings.Join(tc.passed, sep) {
					t.Errorf("%s: passed %q, want %q", mode.name, got.passed, tc.passed)
				}
				if tc.kept == 0 && len(got.kept) > 0 || tc.kept != 0 && (len(got.kept) != 1 || got.kept[0].code != tc.kept || got.kept[0].req.callID != "st-1") {
					t.Errorf("%s: answered on an open stream: %+v, want %d", mode.name, got.kept, tc.kept)
				}
				switch v := got.bad; {
				case tc.code == 0 && v != nil:
					t.Errorf("%s: Verdict %d %q, want none", mode.name, v.code, v.why)
				case tc.code == 0:
				case v == nil:
					t.Errorf("%s: no Verdict, want %d", mode.name, tc.code)
				case tc.code == -1 && v.action != Drop, tc.code > 0 && (v.action != Respond || v.code != tc.code):
					t.Errorf("%s: action %d code %d (%s), want %d", mode.name, v.action, v.code, v.why, tc.code)
				case !strings.Contains(v.why, tc.why):
					t.Errorf("%s: why %q, want it to mention %q", mode.name, v.why, tc.why)
				case v.action == Respond && v.req.callID != "st-1":
					t.Errorf("%s: recovered Call-ID %q", mode.name, v.req.callID)
				}
			}
		})
	}
}

// FuzzStreamFramer: whatever the bytes and however they are cut, the framer never panics,
// frames a prefix of the input unchanged and in order, nothing after a verdict that closes the
// stream, passes only frames sipgo's stream parser reads whole (or keep-alives sipgo skips),
// and frames, passes and answers the same as when the input comes at once.
func FuzzStreamFramer(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "torture", "*", "*.dat"))
	for i, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b, uint64(i))
		}
	}
	opt := "OPTIONS sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nl: 3\r\n\r\nabc"
	f.Add([]byte("\r\n\r\n"+opt+"\x00\r\n"+opt), uint64(7))
	f.Add([]byte(strings.Replace(opt, "l: 3", "Content-Length: 3\r\nl: 2", 1)), uint64(1))
	f.Add([]byte(strings.Replace(opt, "\r\n", "\n", 3)+"\r\n\r"), uint64(3))
	f.Add([]byte("\n\r\n"), uint64(0))
	f.Add([]byte(strings.Replace(opt, "SIP/2.0\r\n", "SIP/3.0\r\n", 1)+opt), uint64(4))
	f.Add([]byte("SIP/2.0 200 OK\r\nContent-Length: 2000\r\n\r\n"), uint64(2))
	f.Add([]byte(strings.Replace(opt, "Call-ID", "X: "+strings.Repeat("y", 1500)+"\r\nCall-ID", 1)), uint64(5))
	p := sip.NewParser()
	p.MaxMessageLength = 2048 // small limits, so that the fuzzer reaches them
	newFramer := func() *Framer {
		fr := NewFramer(p)
		fr.maxHeader = 1024
		return fr
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, seed>>7))
		got := runFramer(newFramer(), data, func(left int) int { return 1 + rng.IntN(min(left, 64)) })
		at := 0
		for _, fr := range got.all {
			if !bytes.HasPrefix(data[at:], []byte(fr)) {
				t.Fatalf("frame %q at %d is not the input's next bytes", fr, at)
			}
			at += len(fr)
		}
		for _, fr := range got.passed {
			switch {
			case len(fr) == 0:
				t.Fatal("empty frame")
			case leading([]byte(fr), "\x00") == len(fr):
			case leading([]byte(fr), "\r\n") == len(fr) && len(fr) <= 4:
			default:
				// sipgo reads the frame from a fresh stream parser as exactly one message.
				var n int
				ps := p.NewSIPStream()
				if err := ps.ParseSIPStream([]byte(fr), func(sip.Message) { n++ }); err != nil || n != 1 || ps.Buffer().Len() != 0 {
					t.Fatalf("sipgo reads frame %q as %d messages, err %v", fr, n, err)
				}
			}
		}
		once := runFramer(newFramer(), data, whole)
		if a, b := strings.Join(once.all, ""), strings.Join(got.all, ""); a != b {
			t.Fatalf("framed %q at once, %q in pieces", a, b)
		}
		if a, b := strings.Join(once.passed, ""), strings.Join(got.passed, ""); a != b {
			t.Fatalf("passed %q at once, %q in pieces", a, b)
		}
		if len(once.kept) != len(got.kept) {
			t.Fatalf("answered %+v at once, %+v in pieces", once.kept, got.kept)
		}
		for i := range once.kept {
			if once.kept[i].action != got.kept[i].action || once.kept[i].code != got.kept[i].code {
				t.Fatalf("answered %+v at once, %+v in pieces", once.kept, got.kept)
			}
		}
		if (once.bad == nil) != (got.bad == nil) || once.bad != nil && (once.bad.action != got.bad.action || once.bad.code != got.bad.code) {
			t.Fatalf("Verdict %+v at once, %+v in pieces", once.bad, got.bad)
		}
	})
}
