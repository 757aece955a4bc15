package calls

import (
	"strings"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/problem"
)

func TestCallContext(t *testing.T) {
	t.Parallel()
	key := CallContextKey([]byte("access-key"))
	other := CallContextKey([]byte("another-key"))
	now := time.Unix(1_800_000_000, 0)
	tok := signCallContext(key, "call-1", "node-a", now.Add(time.Minute))
	p, sig, _ := strings.Cut(tok, ".")
	for _, tc := range []struct {
		name  string
		keys  [][]byte
		token string
		at    time.Time
		kind  problem.Kind
	}{
		{"valid", [][]byte{key}, tok, now, -1},
		{"valid with a rotated key", [][]byte{other, key}, tok, now, -1},
		{"expired", [][]byte{key}, tok, now.Add(time.Minute), problem.KindNotFound},
		{"other key", [][]byte{other}, tok, now, problem.KindInvalid},
		{"tampered payload", [][]byte{key}, signCallContext(other, "call-2", "node-a", now.Add(time.Hour))[:len(p)] + "." + sig, now, problem.KindInvalid},
		{"no signature", [][]byte{key}, p, now, problem.KindInvalid},
		{"garbage", [][]byte{key}, "%%%.%%%", now, problem.KindInvalid},
		{"empty", [][]byte{key}, "", now, problem.KindInvalid},
	} {
		cl, err := verifyCallContext(tc.keys, tc.token, tc.at)
		if tc.kind == -1 {
			if err != nil || cl.ServerCallID != "call-1" || cl.Node != "node-a" {
				t.Errorf("%s: %+v %v", tc.name, cl, err)
			}
			continue
		}
		if problem.KindOf(err) != tc.kind {
			t.Errorf("%s: %v, want kind %d", tc.name, err, tc.kind)
		}
	}
}

func FuzzCallContext(f *testing.F) {
	key := CallContextKey([]byte("k"))
	f.Add(signCallContext(key, "c", "n", time.Now().Add(time.Hour)))
	f.Add("a.b")
	f.Fuzz(func(t *testing.T, tok string) {
		_, _ = verifyCallContext([][]byte{key}, tok, time.Now())
	})
}
