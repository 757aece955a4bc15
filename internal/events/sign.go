package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks header names (standardwebhooks.com, "Signature scheme").
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// signingKey returns the HMAC key of a secret: a "whsec_"-prefixed secret is base64 as
// Standard Webhooks issues them; anything else is used as its bytes.
func signingKey(secret string) []byte {
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if k, err := base64.StdEncoding.DecodeString(rest); err == nil {
			return k
		}
	}
	return []byte(secret)
}

// Sign returns the webhook-signature value "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>".
func Sign(secret, id string, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, signingKey(secret))
	var buf [128]byte
	prefix := append(append(buf[:0], id...), '.')
	m.Write(append(strconv.AppendInt(prefix, ts.Unix(), 10), '.'))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// SetHeaders adds the three Standard Webhooks headers to h.
func SetHeaders(h http.Header, secret, id string, ts time.Time, body []byte) {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, Sign(secret, id, ts, body))
}

// Errors from Verify.
var (
	ErrNoSignature  = errors.New("webhook: missing signature headers")
	ErrBadTimestamp = errors.New("webhook: timestamp outside tolerance")
	ErrBadSignature = errors.New("webhook: no matching signature")
)

// Verify checks a delivery as a receiver would: the headers are present, the timestamp is
// within tolerance of now, and one of the space-separated v1 signatures matches. telgw's tests
// use it; it is exported for Go subscribers.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, tsv, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsv == "" || sigs == "" {
		return ErrNoSignature
	}
	sec, err := strconv.ParseInt(tsv, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrBadTimestamp, tsv)
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > tolerance || d < -tolerance {
		return ErrBadTimestamp
	}
	want := Sign(secret, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return ErrBadSignature
}
