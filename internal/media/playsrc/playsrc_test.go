package playsrc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/media/audio"
)

// wav returns a mono 8 kHz PCM file of n samples.
func wav(n int) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("RIFF")
	_ = binary.Write(&b, le, uint32(36+2*n))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(8000), uint32(16000), uint16(2), uint16(16)} {
		_ = binary.Write(&b, le, v)
	}
	b.WriteString("data")
	_ = binary.Write(&b, le, uint32(2*n))
	b.Write(make([]byte, 2*n))
	return b.Bytes()
}

type server struct {
	*httptest.Server
	hits atomic.Int32
}

func newServer(t *testing.T) *server {
	s := &server{}
	mux := http.NewServeMux()
	mux.HandleFunc("/a.wav", func(w http.ResponseWriter, r *http.Request) { s.hits.Add(1); _, _ = w.Write(wav(800)) })
	mux.HandleFunc("/b.wav", func(w http.ResponseWriter, r *http.Request) { s.hits.Add(1); _, _ = w.Write(wav(1600)) })
	mux.HandleFunc("/big.wav", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(wav(40000))))
		_, _ = w.Write(wav(40000))
	})
	mux.HandleFunc("/chunked.wav", func(w http.ResponseWriter, r *http.Request) {
		b := wav(40000)
		for i := 0; i < len(b); i += 1000 {
			_, _ = w.Write(b[i:min(i+1000, len(b))])
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/slow.wav", func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	})
	mux.HandleFunc("/shared.wav", func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		time.Sleep(100 * time.Millisecond)
		_, _ = w.Write(wav(800))
	})
	mux.HandleFunc("/text.txt", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("not audio at all")) })
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func newFetcher(t *testing.T, cfg Config) *Fetcher {
	f, err := New(&http.Client{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { http.DefaultTransport.(*http.Transport).CloseIdleConnections() })
	return f
}

func TestFetchAndCache(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	f := newFetcher(t, Config{MaxBytes: 64 << 10, Timeout: 500 * time.Millisecond, CacheBytes: 5000})
	ctx := context.Background()
	pcm, err := f.File(ctx, s.URL+"/a.wav", "")
	if err != nil || len(pcm) != 800 {
		t.Fatalf("%d samples, %v", len(pcm), err)
	}
	if _, err := f.File(ctx, s.URL+"/a.wav", ""); err != nil || s.hits.Load() != 1 {
		t.Errorf("cached by URL: %d fetches, %v", s.hits.Load(), err)
	}
	// playSourceCacheId: the same id is served from the cache whatever the URL.
	if _, err := f.File(ctx, s.URL+"/b.wav", "menu"); err != nil || s.hits.Load() != 2 {
		t.Fatal(err)
	}
	if got, err := f.File(ctx, s.URL+"/a.wav", "menu"); err != nil || len(got) != 1600 || s.hits.Load() != 2 {
		t.Errorf("cache id: %d samples, %d fetches, %v", len(got), s.hits.Load(), err)
	}
	// LRU in bytes: a (1600 B) + menu (3200 B) fit in 5000; b by URL (3200 B) evicts a.
	if _, err := f.File(ctx, s.URL+"/b.wav", ""); err != nil {
		t.Fatal(err)
	}
	if f.CachedBytes() > 5000 {
		t.Errorf("cache holds %d bytes", f.CachedBytes())
	}
	hits := s.hits.Load()
	_, _ = f.File(ctx, s.URL+"/a.wav", "")
	if s.hits.Load() != hits+1 {
		t.Error("the least recently used entry was not evicted")
	}
}

func TestFetchErrors(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	f := newFetcher(t, Config{MaxBytes: 64 << 10, Timeout: 300 * time.Millisecond, CacheBytes: 1 << 20})
	ctx := context.Background()
	for _, tc := range []struct {
		uri  string
		want error
	}{
		{s.URL + "/big.wav", ErrTooLarge},
		{s.URL + "/chunked.wav", ErrTooLarge},
		{s.URL + "/missing.wav", ErrDownload},
		{s.URL + "/slow.wav", ErrDownload},
		{s.URL + "/text.txt", audio.ErrFormat},
		{"file:///etc/passwd", ErrURL},
		{"ftp://example.com/a.wav", ErrURL},
		{"/relative.wav", ErrURL},
		{"http://%zz", ErrURL},
	} {
		if _, err := f.File(ctx, tc.uri, ""); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.uri, err, tc.want)
		}
	}
	// Failures are not cached.
	n := s.hits.Load()
	_, _ = f.File(ctx, s.URL+"/slow.wav", "")
	if s.hits.Load() != n+1 {
		t.Error("a failure was cached")
	}
}

// Concurrent plays of one prompt fetch it once, and a caller that gives up does not cancel
// the fetch for the others.
func TestFetchCoalesces(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	f := newFetcher(t, DefaultConfig())
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	quitter, cancel := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := f.File(quitter, s.URL+"/shared.wav", ""); !errors.Is(err, context.Canceled) {
			errs <- err
		}
	}()
	time.Sleep(10 * time.Millisecond)
	cancel()
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if pcm, err := f.File(context.Background(), s.URL+"/shared.wav", ""); err != nil || len(pcm) != 800 {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s.hits.Load() != 1 {
		t.Errorf("%d fetches", s.hits.Load())
	}
}

// With the SSRF guard's client (what the app passes), a URL on telgw's own network is refused
// at dial time.
func TestFetchThroughGuard(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := &events.Guard{}
	c := g.Client(time.Second)
	f, err := New(c, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	if _, err := f.File(context.Background(), s.URL+"/a.wav", ""); !errors.Is(err, ErrDownload) || !errors.Is(err, events.ErrBlockedAddress) {
		t.Errorf("loopback through the guard: %v", err)
	}
	if _, err := New(nil, DefaultConfig()); err == nil {
		t.Error("nil client accepted")
	}
	if err := (Config{}).Validate(); err == nil {
		t.Error("zero config valid")
	}
}

func TestLoadCachesSpeech(t *testing.T) {
	t.Parallel()
	f := newFetcher(t, DefaultConfig())
	calls := 0
	synth := func(context.Context) ([]int16, error) { calls++; return make([]int16, 100), nil }
	key := CacheKey("", "tts:en-US-JennyNeural:hello")
	for range 3 {
		if _, err := f.Load(context.Background(), key, synth); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Errorf("synthesised %d times", calls)
	}
}
