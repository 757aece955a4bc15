// Package playsrc turns Call Automation play sources into 8 kHz PCM: it fetches FileSource
// URLs over HTTP(S) with a size limit and a timeout, decodes them (internal/media/audio), and
// keeps the result in an LRU cache bounded in bytes, keyed by playSourceCacheId when the
// request names one and by the URL otherwise. Synthesised speech goes through the same cache
// (Load).
//
// The HTTP client comes from the caller: the app passes the SSRF guard's client
// (events.Guard.Client), which refuses to dial telgw's own network on every connection,
// redirects included.
package playsrc

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/telgw/telgw/internal/media/audio"
)

// Config configures a Fetcher.
type Config struct {
	// MaxBytes bounds a fetched file (default 16 MiB).
	MaxBytes int64
	// Timeout bounds one fetch, decoding included (default 15 s).
	Timeout time.Duration
	// CacheBytes bounds the decoded audio kept (default 256 MiB: about 4.6 hours at 8 kHz);
	// 0 disables the cache.
	CacheBytes int64
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MaxBytes: 16 << 20, Timeout: 15 * time.Second, CacheBytes: 256 << 20}
}

// Validate reports every problem with c (keys as docs/CONFIG.md names them under media.play).
func (c Config) Validate() error {
	var errs []error
	if c.MaxBytes < 1024 {
		errs = append(errs, fmt.Errorf("maxBytes: %d must be at least 1024", c.MaxBytes))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout: %v must be positive", c.Timeout))
	}
	if c.CacheBytes < 0 {
		errs = append(errs, fmt.Errorf("cacheBytes: %d must not be negative", c.CacheBytes))
	}
	return errors.Join(errs...)
}

// Errors a fetch fails with (wrapped with details); audio.ErrFormat for files telgw cannot
// decode. The engine maps them to PlayFailed result information.
var (
	ErrURL      = errors.New("play source URL must be an absolute http or https URL")
	ErrTooLarge = errors.New("play source file is too large")
	ErrDownload = errors.New("play source could not be downloaded")
)

// Fetcher fetches, decodes and caches play sources. Safe for concurrent use.
type Fetcher struct {
	cfg    Config
	client *http.Client
	group  singleflight.Group

	mu    sync.Mutex
	lru   *list.List // front: most recently used; values *entry
	items map[string]*list.Element
	bytes int64

	fetches int // HTTP requests made (tests)
}

type entry struct {
	key string
	pcm []int16
}

// New returns a Fetcher using client for every request.
func New(client *http.Client, cfg Config) (*Fetcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("playsrc: %w", err)
	}
	if client == nil {
		return nil, errors.New("playsrc: an HTTP client is required (the SSRF guard's)")
	}
	return &Fetcher{cfg: cfg, client: client, lru: list.New(), items: map[string]*list.Element{}}, nil
}

// CacheKey is the cache key of a source: its playSourceCacheId when set, otherwise what
// identifies its content (the URL; the voice and text of speech).
func CacheKey(cacheID, content string) string {
	if cacheID != "" {
		return "id:" + cacheID
	}
	return "src:" + content
}

// File returns the prompt at uri (FileSource), from the cache when cacheID (or, without one,
// the URL) is there.
func (f *Fetcher) File(ctx context.Context, uri, cacheID string) ([]int16, error) {
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: %q", ErrURL, uri)
	}
	return f.Load(ctx, CacheKey(cacheID, "url:"+uri), func(ctx context.Context) ([]int16, error) { return f.fetch(ctx, uri) })
}

// Load returns the cached audio for key or runs load once for all concurrent callers of the
// same key (bounded by Timeout, and not canceled when one caller gives up) and caches it.
func (f *Fetcher) Load(ctx context.Context, key string, load func(context.Context) ([]int16, error)) ([]int16, error) {
	if pcm, ok := f.get(key); ok {
		return pcm, nil
	}
	ch := f.group.DoChan(key, func() (any, error) {
		if pcm, ok := f.get(key); ok {
			return pcm, nil
		}
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.cfg.Timeout)
		defer cancel()
		pcm, err := load(lctx)
		if err != nil {
			return nil, err
		}
		f.put(key, pcm)
		return pcm, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.([]int16), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *Fetcher) fetch(ctx context.Context, uri string) ([]int16, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrURL, err)
	}
	req.Header.Set("User-Agent", "telgw")
	req.Header.Set("Accept", "audio/wav, audio/x-wav, audio/mpeg, */*;q=0.1")
	f.mu.Lock()
	f.fetches++
	f.mu.Unlock()
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDownload, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%w: HTTP %d", ErrDownload, resp.StatusCode)
	}
	if resp.ContentLength > f.cfg.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrTooLarge, resp.ContentLength, f.cfg.MaxBytes)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDownload, err)
	}
	if int64(len(b)) > f.cfg.MaxBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, f.cfg.MaxBytes)
	}
	return audio.LoadPrompt(b)
}

func (f *Fetcher) get(key string) ([]int16, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	el, ok := f.items[key]
	if !ok {
		return nil, false
	}
	f.lru.MoveToFront(el)
	return el.Value.(*entry).pcm, true
}

func (f *Fetcher) put(key string, pcm []int16) {
	size := int64(2 * len(pcm))
	f.mu.Lock()
	defer f.mu.Unlock()
	if size > f.cfg.CacheBytes {
		return
	}
	if el, ok := f.items[key]; ok {
		f.bytes -= int64(2 * len(el.Value.(*entry).pcm))
		f.lru.Remove(el)
	}
	f.items[key] = f.lru.PushFront(&entry{key: key, pcm: pcm})
	f.bytes += size
	for f.bytes > f.cfg.CacheBytes {
		el := f.lru.Back()
		e := el.Value.(*entry)
		f.lru.Remove(el)
		delete(f.items, e.key)
		f.bytes -= int64(2 * len(e.pcm))
	}
}

// CachedBytes is the size of the decoded audio held.
func (f *Fetcher) CachedBytes() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bytes
}
