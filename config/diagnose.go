package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
)

// diagnoseYAML explains why a configuration file did not decode, one error per offending key
// and all of them at once: unknown keys (with the key meant when it is a near miss) and values
// of the wrong type ("http.clockSkew: want a duration like 15m, got 15"). The strict decoder
// stops at its first problem; an operator fixing a file wants the whole list.
func diagnoseYAML(b []byte) []error {
	var doc yaml.MapSlice
	if err := yaml.UnmarshalWithOptions(b, &doc, yaml.UseOrderedMap()); err != nil {
		return []error{errors.New(yaml.FormatError(err, false, true))}
	}
	var errs []error
	diagnoseMap(reflect.TypeOf(Config{}), doc, "", &errs)
	return errs
}

func diagnoseMap(t reflect.Type, m yaml.MapSlice, prefix string, errs *[]error) {
	fields := map[string]reflect.StructField{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		fields[name] = f
		names = append(names, name)
	}
	for _, item := range m {
		key := fmt.Sprint(item.Key)
		path := prefix + key
		f, ok := fields[key]
		if !ok {
			msg := "unknown key"
			if near := nearest(key, names); near != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", prefix+near)
			}
			*errs = append(*errs, fmt.Errorf("%s: %s", path, msg))
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Struct && ft != durationType && !customYAML(ft) {
			sub, ok := item.Value.(yaml.MapSlice)
			if !ok && item.Value != nil {
				*errs = append(*errs, fmt.Errorf("%s: want a mapping of keys, got %s", path, short(item.Value)))
				continue
			}
			diagnoseMap(ft, sub, path+".", errs)
			continue
		}
		if err := decodeAs(ft, item.Value); err != nil {
			*errs = append(*errs, fmt.Errorf("%s: %s", path, want(ft, item.Value, err)))
		}
	}
}

// customYAML reports whether t decodes itself (webhooks' two forms).
func customYAML(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return pt.Implements(reflect.TypeOf((*yaml.BytesUnmarshaler)(nil)).Elem()) ||
		pt.Implements(reflect.TypeOf((*yaml.InterfaceUnmarshaler)(nil)).Elem())
}

// decodeAs decodes one value (re-encoded) strictly into a new t.
func decodeAs(t reflect.Type, v any) error {
	b, err := yaml.Marshal(v)
	if v == nil {
		b, err = []byte("null"), nil
	}
	if err != nil {
		return err
	}
	return yaml.UnmarshalWithOptions(b, reflect.New(t).Interface(), yaml.Strict(), yaml.DisallowUnknownField())
}

// want says what a key of type t takes, in words an operator reads.
func want(t reflect.Type, v any, err error) string {
	got := short(v)
	switch {
	case t == durationType:
		return "want a duration like 15m or 30s, got " + got
	case t.Kind() == reflect.Bool:
		return "want true or false, got " + got
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "want a whole number, got " + got
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "want a number, got " + got
	case t.Kind() == reflect.String:
		return "want text, got " + got
	case t.Kind() == reflect.Slice:
		if _, ok := v.([]any); !ok {
			return "want a list, got " + got
		}
	case t.Kind() == reflect.Map:
		if _, ok := v.(yaml.MapSlice); !ok {
			return "want a mapping, got " + got
		}
	}
	// A list or mapping whose inside is wrong: the decoder's own words, without the source
	// excerpt (positions are relative to the re-encoded value, not to the file).
	return firstLine(yaml.FormatError(err, false, false))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func short(v any) string {
	s := fmt.Sprintf("%v", v)
	if _, ok := v.(string); ok {
		s = fmt.Sprintf("%q", v)
	}
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

// nearest is the name within edit distance 2 of key, or differing only in case ("" if none).
func nearest(key string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if strings.EqualFold(n, key) {
			return n
		}
		if d := editDistance(strings.ToLower(key), strings.ToLower(n)); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// knownEnv lists every TELGW_* variable a configuration key reads, plus TELGW_CONFIG.
func knownEnv() map[string]bool {
	known := map[string]bool{"TELGW_CONFIG": true}
	var walk func(t reflect.Type, path []string)
	walk = func(t reflect.Type, path []string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			p := append(slices.Clone(path), name)
			known[EnvName(p...)] = true
			if f.Type.Kind() == reflect.Struct && f.Type != durationType {
				walk(f.Type, p)
			}
		}
	}
	walk(reflect.TypeOf(Config{}), nil)
	return known
}

// envWarnings names the TELGW_* variables in environ that no key reads: a typo there would
// otherwise be ignored in silence. TELGW_TEST_* and TELGW_BENCH_* belong to the test and
// benchmark harnesses, which start telgw with their own environment, and are not reported.
func envWarnings(environ []string) []string {
	known := knownEnv()
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "TELGW_") || known[k] || strings.HasPrefix(k, "TELGW_TEST_") || strings.HasPrefix(k, "TELGW_BENCH_") {
			continue
		}
		msg := k + " is not a configuration variable; it is ignored"
		var names []string
		for n := range known {
			names = append(names, n)
		}
		slices.Sort(names)
		if near := nearest(k, names); near != "" {
			msg += " (did you mean " + near + "?)"
		}
		out = append(out, msg)
	}
	slices.Sort(out)
	return out
}

// CheckFiles opens the files the configuration names (TLS certificates and keys, the SIP CA
// bundle, push credentials) and reports every one that is missing, unreadable or not what its
// key wants, naming the key. It is I/O, so it is not part of Validate; start-up runs both
// (Check).
func (c *Config) CheckFiles() error {
	var errs []error
	pair := func(certKey, cert, keyKey, key string) {
		if cert == "" || key == "" {
			return
		}
		if _, err := os.Stat(cert); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", certKey, err))
			return
		}
		if _, err := os.Stat(key); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", keyKey, err))
			return
		}
		if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
			errs = append(errs, fmt.Errorf("%s/%s: not a matching PEM certificate and key: %w", certKey, keyKey, err))
		}
	}
	pair("http.tlsCert", c.HTTP.TLSCert, "http.tlsKey", c.HTTP.TLSKey)
	pair("sip.tls.certFile", c.SIP.TLS.CertFile, "sip.tls.keyFile", c.SIP.TLS.KeyFile)
	if f := c.SIP.TLS.CAFile; f != "" {
		if b, err := os.ReadFile(f); err != nil {
			errs = append(errs, fmt.Errorf("sip.tls.caFile: %w", err))
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			errs = append(errs, fmt.Errorf("sip.tls.caFile: %s holds no PEM certificate", f))
		}
	}
	readable := func(key, f string) {
		if f == "" {
			return
		}
		if _, err := os.ReadFile(f); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	readable("sip.stir.keyFile", c.SIP.STIR.KeyFile)
	readable("sip.stir.certFile", c.SIP.STIR.CertFile)
	readable("sip.stir.trustRootsFile", c.SIP.STIR.TrustRootsFile)
	if c.Push.FCM != nil {
		readable("push.fcm.serviceAccountFile", c.Push.FCM.ServiceAccountFile)
	}
	if c.Push.APNs != nil {
		readable("push.apns.keyFile", c.Push.APNs.KeyFile)
	}
	return errors.Join(errs...)
}

// Check is what start-up runs on a loaded configuration: the problems Load found decoding it,
// Validate's and CheckFiles', all reported together, each naming its key.
func Check(cfg *Config, loadErr error) error {
	return errors.Join(loadErr, cfg.Validate(), cfg.CheckFiles())
}
