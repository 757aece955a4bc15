package digest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"sync"
	"time"
)

// DefaultNonceTTL is how long a nonce is accepted when no TTL is given.
const DefaultNonceTTL = time.Minute

// maxCountsPerNonce bounds the nonce-counts remembered for one nonce; past it the nonce is
// stale and the client gets a fresh one (a client re-using a nonce for more requests than
// this within its TTL is a flood, not a phone).
const maxCountsPerNonce = 1024

// NonceCheck is the outcome of checking a nonce's form before the response is verified.
type NonceCheck int

// Outcomes of Nonces.Check.
const (
	// NonceOK is a nonce this instance issued, within its TTL.
	NonceOK NonceCheck = iota
	// NonceForeign is not a nonce of this instance: forged, from before a restart, or issued by
	// another node (whose replay cache this node does not see). Re-challenge (stale=true).
	NonceForeign
	// NonceExpired is one of ours, past its TTL. Re-challenge (stale=true).
	NonceExpired
)

// Nonces issues server nonces (RFC 7616 §3.3) and remembers which nonce-counts each has been
// used with, so that a captured Authorization cannot be sent again (RFC 7616 §3.4.5).
//
// A nonce is base64url(issued-at(8) ‖ instance(8) ‖ HMAC-SHA256(secret, first 16 bytes)[:16]):
// the MAC makes it unforgeable, issued-at bounds its life to TTL, and the instance id binds it
// to this Nonces, whose memory holds the (nonce, nc) pairs already used. A nonce issued by
// another node or before a restart is therefore stale: the client is challenged again, which
// costs one round trip and is always safe behind a load balancer, whereas accepting it would
// let a replay through on a node that never saw the first use.
type Nonces struct {
	secret []byte
	node   [8]byte
	ttl    time.Duration
	now    func() time.Time

	mu    sync.Mutex
	used  map[string]*nonceUse
	swept time.Time
}

type nonceUse struct {
	expires time.Time
	counts  map[uint64]struct{}
}

// NewNonces returns a Nonces signing with secret (a random one when empty) and accepting a
// nonce for ttl (DefaultNonceTTL when ≤ 0). Each Nonces has its own random instance id.
func NewNonces(secret []byte, ttl time.Duration) *Nonces {
	if ttl <= 0 {
		ttl = DefaultNonceTTL
	}
	n := &Nonces{ttl: ttl, now: time.Now, used: map[string]*nonceUse{}}
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
	}
	n.secret = append([]byte(nil), secret...)
	_, _ = rand.Read(n.node[:])
	return n
}

// TTL is how long a nonce is accepted.
func (n *Nonces) TTL() time.Duration { return n.ttl }

func (n *Nonces) mac(b []byte) []byte {
	m := hmac.New(sha256.New, n.secret)
	m.Write(b)
	return m.Sum(nil)[:16]
}

// New returns a fresh nonce.
func (n *Nonces) New() string {
	var b [32]byte
	binary.BigEndian.PutUint64(b[:8], uint64(n.now().UnixNano()))
	copy(b[8:16], n.node[:])
	copy(b[16:], n.mac(b[:16]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Check tells whether nonce is one this instance issued and still within its TTL. It does not
// consume the nonce: call Use once the response has been verified.
func (n *Nonces) Check(nonce string) NonceCheck {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 32 {
		return NonceForeign
	}
	if !hmac.Equal(n.mac(b[:16]), b[16:]) || !hmac.Equal(b[8:16], n.node[:]) {
		return NonceForeign
	}
	age := n.now().Sub(time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))))
	if age < -time.Second || age > n.ttl {
		return NonceExpired
	}
	return NonceOK
}

// Use records that nonce was used with nonce-count nc (RFC 7616 §3.4.5; 0 for a request
// without qop, which may use its nonce only once) and reports whether that is its first use. A
// repeated (nonce, nc) is a replay: the request must be challenged again, not served. Call it
// only after the response was verified, so that guesses cannot spend a client's counts.
func (n *Nonces) Use(nonce string, nc uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	if now.Sub(n.swept) > n.ttl {
		n.swept = now
		for k, u := range n.used {
			if now.After(u.expires) {
				delete(n.used, k)
			}
		}
	}
	u := n.used[nonce]
	if u == nil {
		// Remembered a little past the TTL, so a use at its very end cannot outlive its record.
		u = &nonceUse{expires: now.Add(n.ttl + time.Minute), counts: map[uint64]struct{}{}}
		n.used[nonce] = u
	}
	if _, dup := u.counts[nc]; dup || len(u.counts) >= maxCountsPerNonce {
		return false
	}
	u.counts[nc] = struct{}{}
	return true
}

// Len is the number of nonces remembered (for tests and metrics).
func (n *Nonces) Len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.used)
}
