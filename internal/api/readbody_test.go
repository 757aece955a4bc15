package api

import (
	"bytes"
	"strings"
	"testing"
)

// TestReadBodyAnnouncedLength: a body is read whole whatever its Content-Length says, and a
// large announced length reserves no more than preallocMax before its bytes arrive.
func TestReadBodyAnnouncedLength(t *testing.T) {
	for _, tc := range []struct {
		name      string
		body      string
		announced int64
	}{
		{"exact", "hello", 5},
		{"none", "hello", -1},
		{"huge announced, short body", "hello", 1 << 30},
		{"longer than reserved", strings.Repeat("x", 3*preallocMax+7), 3*preallocMax + 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := readBody(strings.NewReader(tc.body), tc.announced)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, []byte(tc.body)) {
				t.Fatalf("read %d bytes, want %d", len(b), len(tc.body))
			}
			if len(tc.body) < preallocMax && cap(b) > preallocMax+1 {
				t.Fatalf("reserved %d bytes for a %d-byte body", cap(b), len(tc.body))
			}
		})
	}
}
