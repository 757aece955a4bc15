package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// edgeServer serves s on a real loopback listener with the given body deadline.
func edgeServer(t *testing.T, s *Server, readTimeout time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: readTimeout}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { shutdown(srv) })
	return ln.Addr().String()
}

// shutdown stops srv and waits for its connections' goroutines, including net/http's
// lingering close after a request it answered without reading the body (up to 500 ms), which
// Close alone leaves running past the test (goleak in TestMain).
func shutdown(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	_ = srv.Close()
}

func testServer() *Server {
	s := New(Config{Verifier: &Verifier{Keys: func() [][]byte { return [][]byte{testKey} }, Skew: 15 * time.Minute}})
	echo := func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	}
	s.Authed().Post("/echo", echo)
	s.Router().With(UserAuth(nil)).Post("/user", echo)
	return s
}

// An unauthenticated request whose body trickles in is answered 401 at once, without waiting
// for the body (today: held until the body or the client gives up).
func TestUnauthenticatedSlowBodyAnsweredPromptly(t *testing.T) {
	t.Parallel()
	addr := edgeServer(t, testServer(), 30*time.Second)
	date := time.Now().UTC().Format(http.TimeFormat)
	for name, headers := range map[string]string{
		"no authorization": "",
		"bad scheme":       "Authorization: Basic YTpi\r\n",
		"stale date": "x-ms-date: Mon, 02 Jan 2006 15:04:05 GMT\r\nx-ms-content-sha256: x\r\n" +
			"Authorization: HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=" + strings.Repeat("A", 43) + "=\r\n",
		"no content hash": "x-ms-date: " + date + "\r\n" +
			"Authorization: HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=" + strings.Repeat("A", 43) + "=\r\n",
		"user route without token": "",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			path := "/echo"
			if strings.HasPrefix(name, "user") {
				path = "/user"
			}
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n%s\r\n{\"a\":", path, addr, headers)
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer while the body is pending: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
		})
	}
}

// A declared body over http.maxBodyBytes is refused before it is read.
func TestOversizedBodyRefusedBeforeReading(t *testing.T) {
	t.Parallel()
	addr := edgeServer(t, testServer(), 30*time.Second)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := http.Header{}
	Sign(testKey, "POST", "/echo", addr, nil, time.Now(), h)
	fmt.Fprintf(c, "POST /echo HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nx-ms-date: %s\r\nx-ms-content-sha256: %s\r\nAuthorization: %s\r\n\r\n",
		addr, 10<<20, h.Get("x-ms-date"), h.Get("x-ms-content-sha256"), h.Get("Authorization"))
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
}

// A signed request still works end to end (the precheck split changed nothing for it).
func TestSignedRequestStillAccepted(t *testing.T) {
	t.Parallel()
	addr := edgeServer(t, testServer(), 30*time.Second)
	body := `{"hello":"world"}`
	req, _ := http.NewRequest("POST", "http://"+addr+"/echo", strings.NewReader(body))
	Sign(testKey, "POST", "/echo", addr, []byte(body), time.Now(), req.Header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != body {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
}

// Odd methods share one "other" series, and routes are labelled by their chi pattern, not the
// raw path.
func TestMetricsLabelsBounded(t *testing.T) {
	t.Parallel()
	s := testServer()
	s.Router().Get("/things/{id}", func(http.ResponseWriter, *http.Request) {})
	addr := edgeServer(t, s, 30*time.Second)
	for i, m := range []string{"FOOBAR", "BAZQUX", "PROPFIND", "GET", "GET"} {
		req, _ := http.NewRequest(m, fmt.Sprintf("http://%s/things/%d", addr, i), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for _, p := range []string{"/nowhere/1", "/nowhere/2"} {
		resp, err := http.Get("http://" + addr + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var series []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "telgw_http_requests_total{") {
			series = append(series, l)
		}
	}
	text := strings.Join(series, "\n")
	for _, bad := range []string{"FOOBAR", "BAZQUX", "PROPFIND", "/things/1", "/nowhere"} {
		if strings.Contains(text, bad) {
			t.Errorf("series carry %q:\n%s", bad, text)
		}
	}
	for _, want := range []string{`method="other",route="unmatched"} 3`, `method="GET",route="/things/{id}"} 2`, `method="GET",route="unmatched"} 2`} {
		if !strings.Contains(text, want) {
			t.Errorf("no series like %s:\n%s", want, text)
		}
	}
}

// With MetricsElsewhere, /metrics is not on the main router.
func TestMetricsElsewhere(t *testing.T) {
	t.Parallel()
	s := New(Config{MetricsElsewhere: true, Verifier: &Verifier{Keys: func() [][]byte { return [][]byte{testKey} }}})
	addr := edgeServer(t, s, 30*time.Second)
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/metrics on the main router: %d", resp.StatusCode)
	}
}

// A client address past maxConnsPerIP has its extra connections closed on accept; a closed
// connection frees its slot.
func TestLimitListenerPerIP(t *testing.T) {
	t.Parallel()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	ln := LimitListener(raw, 2, reg)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }),
		ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { shutdown(srv) })
	addr := raw.Addr().String()
	get := func(c net.Conn) error {
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	var conns []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := get(c); err != nil {
			t.Fatalf("connection within the cap: %v", err)
		}
		conns = append(conns, c)
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if err := get(extra); err == nil {
		t.Fatal("third connection served")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("third connection left open instead of closed: %v", err)
	}
	conns[0].Close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		err = get(c)
		c.Close()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not freed after close: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
