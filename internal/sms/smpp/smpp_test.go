package smpp

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/telgw/telgw/internal/sms"
	"github.com/telgw/telgw/internal/sms/gsm"
	"github.com/telgw/telgw/internal/sms/receipt"
	"github.com/telgw/telgw/internal/sms/smsctest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a hand-written sms.CarrierHandler.
type recorder struct {
	receipts chan sms.Receipt
	inbound  chan sms.Inbound
	mu       sync.Mutex
	fail     bool
}

func newRecorder() *recorder {
	return &recorder{receipts: make(chan sms.Receipt, 1000), inbound: make(chan sms.Inbound, 100)}
}

func (r *recorder) HandleInbound(_ context.Context, m sms.Inbound) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("store down")
	}
	r.inbound <- m
	return nil
}

func (r *recorder) HandleReceipt(_ context.Context, m sms.Receipt) error {
	r.receipts <- m
	return nil
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startCarrier runs a carrier against s until the test ends.
func startCarrier(t *testing.T, s *smsctest.SMSC, h sms.CarrierHandler, mod func(*Config)) *Carrier {
	t.Helper()
	cfg := Config{Name: "smsc1", Address: s.Addr(), SystemID: "telgw", Password: "secret", SystemType: "telgw",
		Logger: testLogger(t), RebindMin: 50 * time.Millisecond, RebindMax: 200 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx, h) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

func submit(t *testing.T, c *Carrier, text string, report bool) sms.SubmitResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Submit(ctx, sms.Outbound{MessageID: "m1", From: "+14255550100", To: "+14255550199", Text: text, DeliveryReport: report})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	return res
}

func TestSubmitAndReceipts(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"text", "tlv", "both"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := smsctest.Start(t, "../../../test/peers", map[string]any{"receipt": mode})
			rec := newRecorder()
			c := startCarrier(t, s, rec, nil)
			res := submit(t, c, "Hello €uro", true)
			ev := s.Wait("submit", nil, 5*time.Second)
			if ev["from"] != "14255550100" || ev["to"] != "14255550199" || ev["srcTon"] != 1.0 || ev["srcNpi"] != 1.0 ||
				ev["dstTon"] != 1.0 || ev["dstNpi"] != 1.0 || ev["registeredDelivery"] != 1.0 || ev["dataCoding"] != 0.0 ||
				ev["message"] != "Hello €uro" {
				t.Fatalf("submit_sm at SMSC: %v", ev)
			}
			if b := s.Wait("bind", nil, time.Second); b["command"] != "bind_transceiver" || b["systemType"] != "telgw" {
				t.Fatalf("bind: %v", b)
			}
			select {
			case r := <-rec.receipts:
				if !slices.Contains(receipt.Candidates(r.ID), receipt.Key(res.CarrierIDs[0])) || r.State != receipt.StateDelivered {
					t.Fatalf("receipt %+v does not match submit id %s", r, res.CarrierIDs[0])
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no receipt")
			}
		})
	}
}

func TestConcatenation(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("ж", 65) + "😀" + strings.Repeat("Привет ", 10)
	for _, m := range []gsm.Concat{gsm.ConcatUDH8, gsm.ConcatUDH16, gsm.ConcatSAR, gsm.ConcatPayload} {
		t.Run(m.String(), func(t *testing.T) {
			t.Parallel()
			s := smsctest.Start(t, "../../../test/peers", nil)
			c := startCarrier(t, s, newRecorder(), func(c *Config) { c.Concat = m })
			res := submit(t, c, long, false)
			want := 3
			if m == gsm.ConcatPayload {
				want = 1
			}
			if res.Segments != want || len(res.CarrierIDs) != want {
				t.Fatalf("result %+v, want %d parts", res, want)
			}
			var text strings.Builder
			seqs := map[float64]bool{}
			for i := range want {
				ev := s.Wait("submit", nil, 5*time.Second)
				seqs[ev["seq"].(float64)] = true
				if ev["dataCoding"] != 8.0 {
					t.Fatalf("data_coding %v", ev["dataCoding"])
				}
				switch m {
				case gsm.ConcatUDH8, gsm.ConcatUDH16:
					udh := ev["udh"].([]any)
					if len(udh) != 1 || ev["esmClass"].(float64) != 0x40 {
						t.Fatalf("part %d: udh %v esm_class %v", i+1, udh, ev["esmClass"])
					}
					text.WriteString(ev["message"].(string))
				case gsm.ConcatSAR:
					if ev["sarTotal"] != 3.0 || ev["sarSeq"] != float64(i+1) {
						t.Fatalf("part %d: sar %v/%v", i+1, ev["sarSeq"], ev["sarTotal"])
					}
					text.WriteString(ev["message"].(string))
				case gsm.ConcatPayload:
					text.WriteString(ev["payload"].(string))
				}
			}
			if len(seqs) != want {
				t.Fatalf("parts shared sequence numbers: %v", seqs)
			}
			if text.String() != long {
				t.Fatalf("SMSC got %q, want %q", text.String(), long)
			}
		})
	}
}

func TestErrorClassification(t *testing.T) {
	t.Parallel()
	s := smsctest.Start(t, "../../../test/peers", map[string]any{"throttleEvery": 2, "rejectDest": []string{"14255550666"}})
	c := startCarrier(t, s, newRecorder(), nil)
	ctx := context.Background()
	submit(t, c, "one", false)
	_, err := c.Submit(ctx, sms.Outbound{From: "+14255550100", To: "+14255550199", Text: "two"})
	var se *sms.SubmitError
	if !errors.As(err, &se) || !se.Temporary || se.Code != 0x58 {
		t.Fatalf("throttled submit: %v", err)
	}
	_, err = c.Submit(ctx, sms.Outbound{From: "+14255550100", To: "+14255550666", Text: "three"})
	if !errors.As(err, &se) || se.Temporary || se.Code != 0x0B {
		t.Fatalf("rejected submit: %v", err)
	}
}

func TestTemporaryTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status uint32
		want   bool
	}{
		{0x58, true}, {0x14, true}, {0x64, true}, {statusTimeout, true}, {statusNoBind, true}, {statusConnClosed, true},
		{0x0B, false}, {0x08, false}, {0x45, false}, {0x65, false}, {0x01, false},
	}
	for _, tt := range tests {
		if got := Temporary(tt.status); got != tt.want {
			t.Errorf("Temporary(%s) = %v, want %v", StatusName(tt.status), got, tt.want)
		}
	}
}

func TestWindowWaitsInsteadOfDropping(t *testing.T) {
	t.Parallel()
	s := smsctest.Start(t, "../../../test/peers", map[string]any{"quiet": true})
	c := startCarrier(t, s, newRecorder(), func(c *Config) { c.Window = 2; c.Links = 2 })
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := c.Submit(ctx, sms.Outbound{From: "+14255550100", To: "+14255550199", Text: "n" + strings.Repeat("x", i%5)})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if c.Submitted() != 200 {
		t.Fatalf("submitted %d", c.Submitted())
	}
	s.Send(map[string]any{"cmd": "count"})
	if ev := s.Wait("count", nil, 5*time.Second); ev["accepted"] != 200.0 || ev["sessions"] != 2.0 {
		t.Fatalf("SMSC counted %v", ev)
	}
}

func TestInbound(t *testing.T) {
	t.Parallel()
	s := smsctest.Start(t, "../../../test/peers", nil)
	rec := newRecorder()
	c := startCarrier(t, s, rec, nil)
	waitBound(t, c, 1)
	expect := func(text string, segs int) {
		t.Helper()
		select {
		case m := <-rec.inbound:
			if m.Text != text || m.From != "+14255550199" || m.To != "+14255550100" || m.Segments != segs || m.Carrier != "smsc1" {
				t.Fatalf("inbound %+v, want %q in %d", m, text, segs)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no inbound %q", text)
		}
	}
	mo := map[string]any{"cmd": "mo", "from": "14255550199", "to": "14255550100"}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range mo {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	s.Send(with("message", "STOP"))
	expect("STOP", 1)
	// UCS-2 in two UDH parts, sent in reverse order, a surrogate pair split across them.
	s.Send(with("hex", "050003330202de00", "dataCoding", 8, "esmClass", 0x40))
	s.Send(with("hex", "050003330201004800690020d83d", "dataCoding", 8, "esmClass", 0x40))
	expect("Hi 😀", 2)
	// 16-bit reference UDH, GSM-7 with an escape split across parts.
	s.Send(with("hex", "060804123402014142431b", "esmClass", 0x40))
	s.Send(with("hex", "0608041234020265", "esmClass", 0x40))
	expect("ABC€", 2)
	// SAR TLVs.
	s.Send(with("message", "world", "tlvs", map[string]any{"sar_msg_ref_num": 7, "sar_total_segments": 2, "sar_segment_seqnum": 2}))
	s.Send(with("message", "hello ", "tlvs", map[string]any{"sar_msg_ref_num": 7, "sar_total_segments": 2, "sar_segment_seqnum": 1}))
	expect("hello world", 2)
	// message_payload.
	s.Send(with("hex", "", "payloadHex", "7061796c6f6164"))
	expect("payload", 1)
	// A handler failure asks the SMSC to redeliver (ESME_RX_T_APPN).
	rec.mu.Lock()
	rec.fail = true
	rec.mu.Unlock()
	s.Send(with("message", "later"))
	if ev := s.Wait("deliver_sm_resp", func(e map[string]any) bool { return e["status"] != 0.0 }, 5*time.Second); ev["status"] != 100.0 {
		t.Fatalf("deliver_sm_resp %v", ev)
	}
}

func waitBound(t *testing.T, c *Carrier, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Bound() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d links bound, want %d", c.Bound(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMalformedPDUsKeepTheBind(t *testing.T) {
	t.Parallel()
	s := smsctest.Start(t, "../../../test/peers", nil)
	rec := newRecorder()
	c := startCarrier(t, s, rec, nil)
	waitBound(t, c, 1)
	// Unknown command id 0x00000999: generic_nack ESME_RINVCMDID with the same sequence number.
	s.Send(map[string]any{"cmd": "raw", "hex": "00000010000009990000000000000077"})
	if ev := s.Wait("generic_nack", nil, 5*time.Second); ev["status"] != 3.0 || ev["seq"] != 119.0 {
		t.Fatalf("generic_nack %v", ev)
	}
	// deliver_sm whose body is truncated: generic_nack ESME_RINVCMDLEN.
	s.Send(map[string]any{"cmd": "raw", "hex": "00000013000000050000000000000078000101"})
	if ev := s.Wait("generic_nack", nil, 5*time.Second); ev["status"] != 2.0 || ev["seq"] != 120.0 {
		t.Fatalf("generic_nack %v", ev)
	}
	// A receipt without an id is refused permanently (ESME_RX_P_APPN).
	s.Send(map[string]any{"cmd": "mo", "from": "1", "to": "2", "message": "stat:DELIVRD", "esmClass": 4})
	if ev := s.Wait("deliver_sm_resp", nil, 5*time.Second); ev["status"] != 101.0 {
		t.Fatalf("deliver_sm_resp %v", ev)
	}
	// The bind survived: a submit still works on the first session.
	submit(t, c, "still here", false)
	if n := len(s.All("bind")); n != 1 {
		t.Fatalf("%d binds, want 1", n)
	}
}

func TestRebind(t *testing.T) {
	t.Parallel()
	s := smsctest.Start(t, "../../../test/peers", map[string]any{"quiet": true})
	c := startCarrier(t, s, newRecorder(), func(c *Config) { c.BindWait = 10 * time.Second })
	waitBound(t, c, 1)
	s.Send(map[string]any{"cmd": "drop"})
	s.Wait("dropped", nil, 5*time.Second)
	// A submit racing the drop may fail transiently (the caller retries); it never fails
	// permanently, and succeeds once the link has rebound.
	if err := submitEventually(c, "after drop"); err != nil {
		t.Fatalf("submit after drop: %v", err)
	}
	// SMSC down: submits wait for the rebind.
	s.Send(map[string]any{"cmd": "stop"})
	s.Wait("stopped", nil, 5*time.Second)
	errc := make(chan error, 1)
	go func() { errc <- submitEventually(c, "waiting") }()
	time.Sleep(300 * time.Millisecond)
	s.Send(map[string]any{"cmd": "start"})
	if err := <-errc; err != nil {
		t.Fatalf("submit across SMSC restart: %v", err)
	}
}

// submitEventually retries temporary failures for up to 10s, as the send worker does.
func submitEventually(c *Carrier, text string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.Submit(context.Background(), sms.Outbound{From: "+1", To: "+2", Text: text})
		if err == nil || !sms.IsTemporary(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWindow: the carrier's window (what sizes the sms service's in-flight cap) is the
// per-link window times the links, with the defaults applied (10 × 1).
func TestWindow(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ window, links, want int }{{0, 0, 10}, {5, 0, 5}, {0, 3, 30}, {4, 2, 8}} {
		c, err := New(Config{Name: "x", Address: "127.0.0.1:1", Window: tt.window, Links: tt.links})
		if err != nil {
			t.Fatal(err)
		}
		var w sms.Windowed = c
		if got := w.Window(); got != tt.want {
			t.Errorf("window %d links %d: Window() = %d, want %d", tt.window, tt.links, got, tt.want)
		}
	}
}

// TestRunNeedsHandler: Run refuses a nil handler instead of crashing on the first deliver_sm.
func TestRunNeedsHandler(t *testing.T) {
	t.Parallel()
	c, err := New(Config{Name: "x", Address: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background(), nil); err == nil {
		t.Fatal("Run with no handler succeeded")
	}
}

func TestNoBindIsTemporary(t *testing.T) {
	t.Parallel()
	c, err := New(Config{Name: "x", Address: "127.0.0.1:1", BindWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Submit(context.Background(), sms.Outbound{From: "+1", To: "+2", Text: "x"})
	if !sms.IsTemporary(err) {
		t.Fatalf("err %v is not temporary", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	_, err := New(Config{Address: "nohost", Password: "far-too-long", MaxRate: -1})
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"name", "address", "password", "maxRate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestEnquireLinkAndRateLimit(t *testing.T) {
	t.Parallel()
	s := smsctest.Start(t, "../../../test/peers", nil)
	c := startCarrier(t, s, newRecorder(), func(c *Config) { c.EnquireLink = 100 * time.Millisecond; c.MaxRate = 50 })
	waitBound(t, c, 1)
	// SMPP 3.4 §4.11: the link sends enquire_link on its own while idle.
	s.Wait("enquire_link", nil, 5*time.Second)
	s.Wait("enquire_link", nil, 5*time.Second)
	// 11 submits at 50/s cannot take less than 10 gaps of 20ms.
	start := time.Now()
	var wg sync.WaitGroup
	for range 11 {
		wg.Go(func() { submit(t, c, "paced", false) })
	}
	wg.Wait()
	if d := time.Since(start); d < 190*time.Millisecond {
		t.Fatalf("11 submits at maxRate 50/s took %v", d)
	}
}

// TestTransmitterReceiver binds TX and RX separately: submits go over the transmitter,
// receipts and inbound messages arrive over the receiver.
func TestTransmitterReceiver(t *testing.T) {
	t.Parallel()
	s := smsctest.Start(t, "../../../test/peers", nil)
	rec := newRecorder()
	c := startCarrier(t, s, rec, func(c *Config) { c.BindMode = "txrx" })
	waitBound(t, c, 2)
	kinds := map[string]bool{}
	for range 2 {
		kinds[s.Wait("bind", nil, 5*time.Second)["command"].(string)] = true
	}
	if !kinds["bind_transmitter"] || !kinds["bind_receiver"] {
		t.Fatalf("binds %v", kinds)
	}
	res := submit(t, c, "tx", true)
	select {
	case r := <-rec.receipts:
		if !slices.Contains(receipt.Candidates(r.ID), receipt.Key(res.CarrierIDs[0])) {
			t.Fatalf("receipt %+v for %v", r, res.CarrierIDs)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no receipt over the receiver bind")
	}
	s.Send(map[string]any{"cmd": "mo", "from": "14255550199", "to": "14255550100", "message": "rx"})
	select {
	case m := <-rec.inbound:
		if m.Text != "rx" {
			t.Fatalf("inbound %+v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no inbound over the receiver bind")
	}
}
