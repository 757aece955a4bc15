package events

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// rawServer answers each request on a connection with answer(n), n counting requests across
// connections, and closes the connection after it when close(n). It counts connections.
type rawServer struct {
	ln    net.Listener
	conns atomic.Int32
	reqs  atomic.Int32
}

func newRawServer(t *testing.T, answer func(n int) string, closeAfter func(n int) bool) (*rawServer, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln}
	done := make(chan struct{})
	t.Cleanup(func() { _ = ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					n := int(s.reqs.Add(1))
					if _, err := io.WriteString(c, answer(n)); err != nil || closeAfter(n) {
						return
					}
				}
			}()
		}
	}()
	return s, "http://" + ln.Addr().String() + "/hook?x=1"
}

func h1Post(t *testing.T, c *h1Client, url string) (h1Answer, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.post(ctx, url, "evt-1", time.Now(), "v1,sig", []byte(`[{"a":1}]`))
}

// TestH1KeepAliveAndAnswers: POSTs reuse one connection across plain, chunked and interim
// (1xx) answers; Connection: close, an unread long answer and a lost idle connection cost a
// new connection, the last one with the POST sent again.
func TestH1KeepAliveAndAnswers(t *testing.T) {
	answers := map[int]string{
		1: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		2: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		3: "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nbusy!\r\n0\r\n\r\n",
		4: "HTTP/1.1 302 Found\r\nLocation: http://10.0.0.1/\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
		5: "HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" + strings.Repeat("x", 70000),
		6: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	}
	srv, url := newRawServer(t, func(n int) string {
		if a, ok := answers[n]; ok {
			return a
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
	}, func(n int) bool { return n == 4 || n == 6 })
	c := newH1Client(&Guard{AllowPrivate: true}, 5*time.Second, 4)
	want := []struct {
		code  int
		conns int32
	}{{200, 1}, {204, 1}, {503, 1}, {302, 1}, {200, 2}, {200, 3}, {200, 4}}
	for i, w := range want {
		if i == 6 {
			time.Sleep(50 * time.Millisecond) // the server closed the kept connection after answer 6
		}
		a, err := h1Post(t, c, url)
		if err != nil {
			t.Fatalf("POST %d: %v", i+1, err)
		}
		if a.code != w.code || srv.conns.Load() != w.conns {
			t.Fatalf("POST %d: %d on %d connections, want %d on %d", i+1, a.code, srv.conns.Load(), w.code, w.conns)
		}
		if i == 3 && a.location != "http://10.0.0.1/" {
			t.Errorf("location %q", a.location)
		}
		if i == 2 && answerErr(a.code, a.status, a.location).Error() != "subscriber answered 503 Service Unavailable" {
			t.Errorf("503 answer: %v", answerErr(a.code, a.status, a.location))
		}
	}
	// The POST on the connection the server had closed was sent once more, on a new one.
	if got := srv.reqs.Load(); got != 7 {
		t.Errorf("server read %d requests, want 7", got)
	}
	c.closeIdle(time.Now().Add(time.Hour))
	if len(c.idle) != 0 {
		t.Errorf("idle connections left: %v", c.idle)
	}
}

// TestH1Failures: a subscriber that never answers times out (or the context ends), one that
// closes without answering on a new connection fails, header values with control characters
// are refused, and the guard refuses loopback at dial time.
func TestH1Failures(t *testing.T) {
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	_, silent := newRawServer(t, func(int) string { <-hang; return "" }, func(int) bool { return true })
	c := newH1Client(&Guard{AllowPrivate: true}, 200*time.Millisecond, 4)
	start := time.Now()
	if _, err := h1Post(t, c, silent); err == nil || time.Since(start) > 3*time.Second {
		t.Errorf("silent subscriber: %v after %v", err, time.Since(start))
	}
	c = newH1Client(&Guard{AllowPrivate: true}, time.Minute, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.post(ctx, silent, "id", time.Now(), "sig", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled POST: %v", err)
	}
	_, closing := newRawServer(t, func(int) string { return "" }, func(int) bool { return true })
	if _, err := h1Post(t, c, closing); err == nil {
		t.Error("POST answered by a close succeeded")
	}
	if _, err := c.post(context.Background(), closing, "id\r\nX-Injected: 1", time.Now(), "sig", nil); err == nil {
		t.Error("id with CRLF accepted")
	}
	if _, err := h1Post(t, newH1Client(&Guard{}, time.Second, 4), closing); !errors.Is(err, ErrBlockedAddress) {
		t.Errorf("loopback by default: %v, want ErrBlockedAddress", err)
	}
}

// TestH1EndlessHeaders: a subscriber answering with headers that never end gets an error
// after h1AnswerMax bytes, not our memory until the timeout; the next POST is fine.
func TestH1EndlessHeaders(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n")
				line := "X-Pad: " + strings.Repeat("a", 1000) + "\r\n"
				for {
					if _, err := io.WriteString(c, line); err != nil {
						return
					}
				}
			}()
		}
	}()
	c := newH1Client(&Guard{AllowPrivate: true}, 5*time.Second, 4)
	start := time.Now()
	_, err = h1Post(t, c, "http://"+ln.Addr().String()+"/hook")
	if !errors.Is(err, errAnswerTooLong) {
		t.Fatalf("endless headers: %v after %v, want errAnswerTooLong", err, time.Since(start))
	}
}

// TestH1TLS: an https subscriber gets TLS with its name checked, over kept connections.
func TestH1TLS(t *testing.T) {
	var got atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(HeaderID) == "evt-1" && r.Host != "" && r.URL.RawQuery == "x=1" {
			got.Add(1)
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	c := newH1Client(&Guard{AllowPrivate: true}, 5*time.Second, 4)
	if _, err := h1Post(t, c, srv.URL+"/hook?x=1"); err == nil {
		t.Fatal("POST to an untrusted certificate succeeded")
	}
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c.tls.RootCAs = pool
	for range 3 {
		a, err := h1Post(t, c, srv.URL+"/hook?x=1")
		if err != nil || a.code != http.StatusAccepted {
			t.Fatalf("POST: %v %v", a, err)
		}
	}
	if got.Load() != 3 {
		t.Errorf("subscriber saw %d POSTs, want 3", got.Load())
	}
	c.closeIdle(time.Now().Add(time.Hour))
}
