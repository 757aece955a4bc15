package sip

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// sourceLimiter is the per-source flood limit on out-of-dialog requests (Config.SourceRate and
// SourceBurst): a token bucket per source address, idle buckets swept once a minute.
type sourceLimiter struct {
	rate  float64
	burst int

	mu      sync.Mutex
	buckets map[netip.Addr]*rate.Limiter
	sweep   time.Time
}

func newSourceLimiter(r float64, burst int) *sourceLimiter {
	return &sourceLimiter{rate: r, burst: burst, buckets: map[netip.Addr]*rate.Limiter{}}
}

// allow takes a token from src's bucket.
func (l *sourceLimiter) allow(src netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); now.Sub(l.sweep) > time.Minute {
		l.sweep = now
		for a, b := range l.buckets {
			if b.Tokens() >= float64(l.burst) {
				delete(l.buckets, a)
			}
		}
	}
	b, ok := l.buckets[src]
	if !ok {
		b = rate.NewLimiter(rate.Limit(l.rate), l.burst)
		l.buckets[src] = b
	}
	return b.Allow()
}
