package console

import (
	"sync"
	"time"
)

// limiter counts failed sign-ins per client IP in fixed windows. It is per node: an attacker
// spreading guesses over n nodes gets n times the budget, still far too few for a 256-bit key.
type limiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	now    func() time.Time
	ips    map[string]*failures
}

type failures struct {
	n     int
	start time.Time
}

// maxTracked bounds the map; past it, windows that ended are dropped first.
const maxTracked = 10000

func newLimiter(max int, window time.Duration, now func() time.Time) *limiter {
	return &limiter{max: max, window: window, now: now, ips: map[string]*failures{}}
}

// allow reports whether ip may try to sign in now.
func (l *limiter) allow(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.ips[ip]
	if f == nil {
		return true
	}
	if l.now().Sub(f.start) >= l.window {
		delete(l.ips, ip)
		return true
	}
	return f.n < l.max
}

// fail records a failed sign-in from ip.
func (l *limiter) fail(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f := l.ips[ip]
	if f == nil || now.Sub(f.start) >= l.window {
		if len(l.ips) >= maxTracked {
			for k, v := range l.ips {
				if now.Sub(v.start) >= l.window {
					delete(l.ips, k)
				}
			}
			if len(l.ips) >= maxTracked {
				return // under a flood of addresses, keep memory bounded rather than count
			}
		}
		f = &failures{start: now}
		l.ips[ip] = f
	}
	f.n++
}
