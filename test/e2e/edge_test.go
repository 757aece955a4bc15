package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/telgw/telgw/internal/events"
)

// TestWebhookURLsCannotReachInside: subscriptions to loopback, the cloud metadata address or a
// name resolving to loopback are refused (400 naming url) unless webhooks.allowPrivate is set.
func TestWebhookURLsCannotReachInside(t *testing.T) {
	recv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		events.AnswerValidation(w, body) // the Event Grid handshake of POST /telgw/webhooks
	}), ReadHeaderTimeout: time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = recv.Serve(ln) }()
	t.Cleanup(func() { _ = recv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	inside := []string{"http://127.0.0.1:" + port + "/", "http://169.254.169.254/latest/meta-data/",
		"http://localhost:" + port + "/", "http://[::1]:" + port + "/", "http://10.0.0.1/", "file:///etc/passwd"}

	tg := StartTelgw(t, Options{})
	c := NewClient(t, tg.ConnString)
	for _, u := range inside {
		r := c.Do(t, "POST", "/telgw/webhooks", map[string]any{"url": u, "secret": "s"})
		if r.Status != http.StatusBadRequest {
			t.Errorf("POST /telgw/webhooks %s: %d %s, want 400", u, r.Status, r.Body)
			continue
		}
		if _, target, _ := r.ErrorCode(t); target != "url" {
			t.Errorf("%s: error target %q, want url", u, target)
		}
	}

	open := StartTelgw(t, Options{Env: []string{"TELGW_WEBHOOKS_ALLOW_PRIVATE=true"}})
	oc := NewClient(t, open.ConnString)
	if r := oc.Do(t, "POST", "/telgw/webhooks", map[string]any{"url": inside[0], "secret": "s"}); r.Status != http.StatusCreated {
		t.Fatalf("with webhooks.allowPrivate: %d %s", r.Status, r.Body)
	}
}

// TestSlowHeadersCut: a client that sends its headers a byte at a time is disconnected after
// http.readHeaderTimeout.
func TestSlowHeadersCut(t *testing.T) {
	tg := StartTelgw(t, Options{Env: []string{"TELGW_HTTP_READ_HEADER_TIMEOUT=1s"}})
	host := hostOf(t, tg.Endpoint)
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() {
		_ = c.SetReadDeadline(time.Now().Add(8 * time.Second))
		_, err := io.ReadAll(c)
		closed <- err
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-closed:
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("slow-header connection still open after %v", time.Since(start))
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("slow-header connection cut only after %v", d)
			}
			return
		case <-tick.C:
			_, _ = io.WriteString(c, "X")
		}
	}
}

// TestUnauthenticatedSlowBody: an unsigned request whose body never finishes is answered 401
// at once, not after the body timeout.
func TestUnauthenticatedSlowBody(t *testing.T) {
	tg := StartTelgw(t, Options{})
	host := hostOf(t, tg.Endpoint)
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /identities?api-version=2023-10-01 HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"createTokenWithScopes\":", host)
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no prompt answer to an unsigned request with a pending body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", resp.StatusCode)
	}
}

// TestSIPWebSocketOutlivesWriteTimeout: /sip/ws connections are exempt from the HTTP read and
// write deadlines: a registered WebSocket still works well after http.writeTimeout.
func TestSIPWebSocketOutlivesWriteTimeout(t *testing.T) {
	tg := StartTelgw(t, Options{Env: []string{"TELGW_HTTP_WRITE_TIMEOUT=1s", "TELGW_HTTP_READ_TIMEOUT=1s"}})
	c := NewClient(t, tg.ConnString)
	r := c.Do(t, "POST", "/identities?api-version=2023-10-01", map[string]any{"createTokenWithScopes": []string{"voip"}})
	var id struct {
		AccessToken struct{ Token string } `json:"accessToken"`
	}
	r.JSON(t, &id)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, _, err := ws.Dialer{Protocols: []string{"sip"}}.Dial(ctx, "ws://"+c.Base.Host+"/sip/ws")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	register := func(cseq int) string {
		t.Helper()
		msg := "REGISTER sip:127.0.0.1 SIP/2.0\r\n" +
			"Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKwt" + strconv.Itoa(cseq) + "\r\n" +
			"Max-Forwards: 70\r\nTo: <sip:alice@127.0.0.1>\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\n" +
			"Call-ID: ws-write-timeout\r\nCSeq: " + strconv.Itoa(cseq) + " REGISTER\r\n" +
			"Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws>;expires=300\r\n" +
			"Authorization: Bearer " + id.AccessToken.Token + "\r\nContent-Length: 0\r\n\r\n"
		if err := wsutil.WriteClientText(conn, []byte(msg)); err != nil {
			t.Fatalf("write after %d: %v", cseq, err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			b, err := wsutil.ReadServerText(conn)
			if err != nil {
				t.Fatalf("read (REGISTER %d): %v", cseq, err)
			}
			if !strings.HasPrefix(string(b), "SIP/2.0 100") {
				return string(b)
			}
		}
	}
	if res := register(1); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("REGISTER:\n%s", res)
	}
	time.Sleep(2500 * time.Millisecond)
	if res := register(2); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("REGISTER after 2.5s (writeTimeout 1s):\n%s", res)
	}
}

// TestMetricsOnOwnAddress: with metrics.addr set, /metrics is served there and not on the
// main listener.
func TestMetricsOnOwnAddress(t *testing.T) {
	tg := StartTelgw(t, Options{Env: []string{"TELGW_METRICS_ADDR=127.0.0.1:0"}})
	maddr := tg.Addrs.Metrics
	if maddr == "" {
		t.Fatalf("no metrics address in listeners.json:\n%s", tg.Logs())
	}
	resp, err := http.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "go_goroutines") {
		t.Fatalf("metrics.addr /metrics: %d %.200s", resp.StatusCode, b)
	}
	resp, err = http.Get(tg.Endpoint + "metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/metrics still on the main listener: %d", resp.StatusCode)
	}
}

func hostOf(t *testing.T, endpoint string) string {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
