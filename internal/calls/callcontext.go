package calls

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/telgw/telgw/internal/problem"
)

// The incomingCallContext of an IncomingCall is an opaque token the app hands back to
// answerCall, rejectCall or redirectCall. telgw signs it (HMAC-SHA256 with a key derived from
// the resource's access key) so it cannot be forged, and it expires with the ring timeout so it
// cannot be replayed later. It names the node holding the call so a cluster can tell which
// node's call it is.

// callContextLabel separates the context key from other uses of the access key.
const callContextLabel = "telgw incomingCallContext v1"

// CallContextKey derives the incomingCallContext signing key from an access key.
func CallContextKey(accessKey []byte) []byte {
	m := hmac.New(sha256.New, accessKey)
	m.Write([]byte(callContextLabel))
	return m.Sum(nil)
}

type callContextClaims struct {
	ServerCallID string `json:"s"`
	Node         string `json:"n"`
	Expires      int64  `json:"e"` // Unix seconds
}

// signCallContext returns the token for serverCallID on node, valid until exp.
func signCallContext(key []byte, serverCallID, node string, exp time.Time) string {
	payload, _ := json.Marshal(callContextClaims{ServerCallID: serverCallID, Node: node, Expires: exp.Unix()})
	p := base64.RawURLEncoding.EncodeToString(payload)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(p))
	return p + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Errors of incomingCallContext, in the ACS error shape (invalid: 400; expired or unknown:
// 404).
var (
	errContextInvalid = problem.Invalid("incomingCallContext", "the incomingCallContext is not valid").WithCode("BadRequest")
	errContextGone    = problem.NotFound("incomingCallContext", "the call of this incomingCallContext is no longer waiting (answered, ended or expired)").WithCode("NotFound")
)

// verifyCallContext checks token against any of keys and returns its claims: invalid (not one
// telgw signed) or gone (expired at now).
func verifyCallContext(keys [][]byte, token string, now time.Time) (callContextClaims, error) {
	var cl callContextClaims
	p, sig, ok := strings.Cut(strings.TrimSpace(token), ".")
	if !ok {
		return cl, errContextInvalid
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return cl, errContextInvalid
	}
	valid := false
	for _, k := range keys {
		if len(k) == 0 {
			continue
		}
		m := hmac.New(sha256.New, k)
		m.Write([]byte(p))
		if hmac.Equal(m.Sum(nil), got) {
			valid = true
			break
		}
	}
	if !valid {
		return cl, errContextInvalid
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil || json.Unmarshal(payload, &cl) != nil || cl.ServerCallID == "" {
		return cl, errContextInvalid
	}
	if now.Unix() >= cl.Expires {
		return cl, errContextGone
	}
	return cl, nil
}
