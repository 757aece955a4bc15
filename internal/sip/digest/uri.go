package digest

import (
	"net/url"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// SameURI reports whether the digest-uri of credentials names the same resource as the
// Request-URI (RFC 7616 §3.4.6: the server MUST check this, else a captured Authorization is
// good for any destination). SIP and SIPS URIs are compared by RFC 3261 §19.1.4; other schemes
// (tel:) by their scheme-specific part, ignoring case and visual separators (RFC 3966 §4).
func SameURI(digestURI string, req sip.Uri) bool {
	var d sip.Uri
	if err := sip.ParseUri(strings.TrimSpace(digestURI), &d); err != nil {
		return false
	}
	if !strings.EqualFold(d.Scheme, req.Scheme) {
		return false
	}
	switch strings.ToLower(d.Scheme) {
	case "sip", "sips":
	default:
		return telNorm(d.Raw()) == telNorm(req.Raw())
	}
	// §19.1.4: user and password compare case-sensitively after unescaping; host
	// case-insensitively; a port present on one side only is a mismatch.
	if unescape(d.User) != unescape(req.User) || unescape(d.Password) != unescape(req.Password) {
		return false
	}
	if !strings.EqualFold(d.Host, req.Host) || d.Port != req.Port {
		return false
	}
	return sameParams(d.UriParams, req.UriParams) && sameHeaders(d.Headers, req.Headers)
}

// sameParams: the user, ttl, method and maddr parameters (and transport) must match when either
// side has them; any other parameter only when both have it (RFC 3261 §19.1.4).
func sameParams(a, b sip.HeaderParams) bool {
	get := func(p sip.HeaderParams, k string) (string, bool) {
		for _, kv := range p {
			if strings.EqualFold(kv.K, k) {
				return kv.V, true
			}
		}
		return "", false
	}
	for _, k := range []string{"user", "ttl", "method", "maddr", "transport"} {
		av, aok := get(a, k)
		bv, bok := get(b, k)
		if aok != bok || !strings.EqualFold(av, bv) {
			return false
		}
	}
	for _, kv := range a {
		if bv, ok := get(b, kv.K); ok && !strings.EqualFold(unescape(kv.V), unescape(bv)) {
			return false
		}
	}
	return true
}

// sameHeaders: URI headers must all match on both sides (RFC 3261 §19.1.4).
func sameHeaders(a, b sip.HeaderParams) bool {
	if len(a) != len(b) {
		return false
	}
	for _, kv := range a {
		found := false
		for _, o := range b {
			if strings.EqualFold(kv.K, o.K) && unescape(kv.V) == unescape(o.V) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func unescape(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// telNorm drops the visual separators of a tel: URI and folds case (RFC 3966 §4, §5.1.1).
func telNorm(s string) string {
	return strings.ToLower(strings.Map(func(r rune) rune {
		switch r {
		case '-', '.', '(', ')':
			return -1
		}
		return r
	}, unescape(s)))
}
