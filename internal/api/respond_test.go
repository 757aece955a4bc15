package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/telgw/telgw/internal/problem"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err  error
		want int
	}{
		{problem.Invalid("f", "x"), 400},
		{problem.NotFound("f", "x"), 404},
		{problem.Conflict("f", "x"), 409},
		{problem.Forbidden("f", "x"), 403},
		{problem.Unauthorized("x"), 401},
		{problem.Unsupported("x"), 501},
		{&problem.Error{Kind: problem.KindUnavailable}, 503},
		{&problem.Error{Kind: problem.KindTooMany}, 429},
		{&problem.Error{Kind: problem.KindTooLarge}, 413},
		{problem.ErrNotFound, 404},
		{errors.New("boom"), 500},
	}
	for _, c := range cases {
		if got := Status(c.err); got != c.want {
			t.Errorf("Status(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

func TestDecodeJSONNamesField(t *testing.T) {
	t.Parallel()
	var v struct {
		Scopes  []string `json:"scopes"`
		Minutes *int     `json:"expiresInMinutes"`
	}
	cases := map[string]string{
		`{"scopes":"voip"}`:            "scopes",
		`{"expiresInMinutes":"sixty"}`: "expiresInMinutes",
		`{"scopes":[`:                  "body",
		`[]`:                           "body",
	}
	for body, target := range cases {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		err := DecodeJSON(r, &v, false)
		pe, ok := problem.As(err)
		if !ok || pe.Kind != problem.KindInvalid || pe.Target != target {
			t.Errorf("%s: got %v (target %q), want invalid %q", body, err, pe.Target, target)
		}
	}
}
