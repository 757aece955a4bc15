// Package config loads telgw's configuration: a YAML file (TELGW_CONFIG) overlaid with TELGW_*
// environment variables. It composes the packages' own configuration: a section's defaults
// come from its package's DefaultConfig, and Validate converts each section to its package's
// Config and calls that Config's Validate, prefixing the keys (caddy's "modules provision and
// validate themselves"). Parsing text the package takes typed (addresses, prefixes, versions)
// stays here. Validate reports every problem at once, does no I/O and changes nothing. Each
// section lives in its own file so later features add sections without touching the others.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/telgw/telgw/internal/api"
	"github.com/telgw/telgw/internal/console"
	"github.com/telgw/telgw/internal/keys"
	"github.com/telgw/telgw/internal/numbers"
)

// Config is the whole telgw configuration.
type Config struct {
	// Warnings are problems Load found that do not stop start-up (a TELGW_* variable no key
	// reads); the node logs them.
	Warnings []string `yaml:"-"`
	// DataDir holds the SQLite database and the connection-string file. Default "./data".
	DataDir string `yaml:"dataDir"`
	// AccessKey, when set, is the primary ACS access key (base64); otherwise one is generated
	// and persisted in the store.
	AccessKey string `yaml:"accessKey"`
	// KeyRefresh is how often a node re-reads the shared keys, so a rotation made by
	// `telgw keys rotate` or another node takes effect. Default 30s.
	KeyRefresh time.Duration `yaml:"keyRefresh"`
	// HTTP is the REST/WebSocket listener.
	HTTP HTTP `yaml:"http"`
	// Database selects the store.
	Database Database `yaml:"database"`
	// Log sets logging.
	Log Log `yaml:"log"`
	// Identity configures user access tokens.
	Identity Identity `yaml:"identity"`
	// Numbers configures the number inventory.
	Numbers Numbers `yaml:"numbers"`
	// SIP configures the SIP stack and carrier trunks.
	SIP SIP `yaml:"sip"`
	// SMS configures SMS carriers.
	SMS SMS `yaml:"sms"`
	// Webhooks lists event subscribers and where deliveries may go.
	Webhooks Webhooks `yaml:"webhooks"`
	// Metrics configures the Prometheus endpoint.
	Metrics Metrics `yaml:"metrics"`
	// TURN configures the embedded STUN/TURN server.
	TURN TURN `yaml:"turn"`
	// Push configures incoming-call push notifications.
	Push Push `yaml:"push"`
	// Console configures the operator web console at /console/.
	Console Console `yaml:"console"`
	// Calls configures how calls reach apps (Call Automation).
	Calls Calls `yaml:"calls"`
	// Policy is the fraud policy: destinations, limits, kill switches (fraud.go).
	Policy Policy `yaml:"policy"`
	// Cluster configures membership of a cluster of nodes on one PostgreSQL.
	Cluster Cluster `yaml:"cluster"`
	// Media configures what apps' calls play and hear (Call Automation media operations).
	Media Media `yaml:"media"`
}

// Console configures the operator web console (internal/console).
type Console struct {
	// Enabled serves the console at /console/ on the HTTP listener. Default true.
	Enabled bool `yaml:"enabled"`
	// SessionTTL is how long a console session lasts after sign-in. Default 12h.
	SessionTTL time.Duration `yaml:"sessionTTL"`
}

// HTTP configures the REST listener.
type HTTP struct {
	// Addr is host:port to listen on. Default "127.0.0.1:8080".
	Addr string `yaml:"addr"`
	// PublicURL is the endpoint written into the connection string and into Operation-Location
	// headers. Default: http(s)://Addr/.
	PublicURL string `yaml:"publicURL"`
	// TLSCert and TLSKey are PEM files; when both are set the listener serves HTTPS.
	TLSCert string `yaml:"tlsCert"`
	TLSKey  string `yaml:"tlsKey"`
	// MaxBodyBytes caps request bodies. Default 1 MiB.
	MaxBodyBytes int64 `yaml:"maxBodyBytes"`
	// ClockSkew is how far x-ms-date may be from now. Default 15m.
	ClockSkew time.Duration `yaml:"clockSkew"`
	// ShutdownTimeout bounds draining on SIGTERM. Default 15s.
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout"`
	// ReadHeaderTimeout bounds reading a request's headers. Default 5s.
	ReadHeaderTimeout time.Duration `yaml:"readHeaderTimeout"`
	// ReadTimeout bounds reading a whole request, body included. Default 30s.
	ReadTimeout time.Duration `yaml:"readTimeout"`
	// WriteTimeout bounds writing a response (WebSockets at /sip/ws are exempt). Default 60s.
	WriteTimeout time.Duration `yaml:"writeTimeout"`
	// IdleTimeout closes keep-alive connections idle this long. Default 120s.
	IdleTimeout time.Duration `yaml:"idleTimeout"`
	// MaxHeaderBytes caps a request's header block. Default 65536.
	MaxHeaderBytes int `yaml:"maxHeaderBytes"`
	// MaxConnsPerIP caps concurrent connections from one client address (0: no cap).
	// Default 256.
	MaxConnsPerIP int `yaml:"maxConnsPerIP"`
}

// Metrics configures the Prometheus /metrics endpoint.
type Metrics struct {
	// Addr, when set, serves /metrics on this host:port only (not on http.addr). Default ""
	// (served on the main HTTP listener).
	Addr string `yaml:"addr"`
	// Pprof also serves Go's runtime profiles (/debug/pprof/) on Addr, for profiling a node
	// under load. Default false; it requires Addr, so profiles never share the API listener.
	Pprof bool `yaml:"pprof"`
}

// Database selects and tunes the store.
type Database struct {
	// URL empty means SQLite in DataDir; postgres://… means PostgreSQL.
	URL string `yaml:"url"`
	// MaxConns caps the pool. Default 16 (PostgreSQL), 4 (SQLite).
	MaxConns int `yaml:"maxConns"`
}

// Log configures the slog logger.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is text or json. Default text.
	Format string `yaml:"format"`
}

// Identity configures identities and user access tokens.
type Identity struct {
	// ResourceID is the ACS resource id embedded in identities and tokens. Default: generated
	// once and persisted in the store.
	ResourceID string `yaml:"resourceId"`
}

// Numbers configures the number inventory.
type Numbers struct {
	// QuarantineDays is how long a released number rests before it is offered again (FCC
	// aging). Default 45; 0: no quarantine.
	QuarantineDays int `yaml:"quarantineDays"`
}

// ServiceConfig is the numbers.Config of this section; the caller adds Store, UserExists and
// Logger.
func (n Numbers) ServiceConfig() numbers.Config {
	c := numbers.DefaultConfig()
	c.QuarantineDays = n.QuarantineDays
	return c
}

// Default returns the configuration with every default filled in.
func Default() Config {
	return Config{
		DataDir:    "./data",
		KeyRefresh: keys.DefaultRefresh,
		HTTP: HTTP{
			Addr:            "127.0.0.1:8080",
			MaxBodyBytes:    api.DefaultMaxBodyBytes,
			ClockSkew:       api.DefaultClockSkew,
			ShutdownTimeout: 15 * time.Second,

			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    64 << 10,
			MaxConnsPerIP:     256,
		},
		Log:     Log{Level: "info", Format: "text"},
		Numbers: Numbers{QuarantineDays: numbers.DefaultConfig().QuarantineDays},
		SIP:     defaultSIP(),
		SMS:     defaultSMS(),
		TURN:    defaultTURN(),
		Console: Console{Enabled: true, SessionTTL: console.DefaultSessionTTL},
		Policy:  defaultPolicy(),
		Cluster: defaultCluster(),
		Media:   defaultMedia(),
		Calls:   Calls{MaxParticipants: 16},
	}
}

// Load reads the YAML file at path (if non-empty) over the defaults, then applies TELGW_*
// overrides from environ (os.Environ() form). It goes on past problems so they can all be
// reported at once: the error lists every unknown key and bad value, naming each, and the
// returned Config holds whatever did decode (run Check on it to add Validate's and the files'
// problems). TELGW_* variables no key reads end up in Config.Warnings.
func Load(path string, environ []string) (Config, error) {
	cfg := Default()
	var errs []error
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		if err := Parse(b, &cfg); err != nil {
			errs = append(errs, fmt.Errorf("config %s:\n%w", path, err))
		}
	}
	if err := applyEnv(&cfg, environ); err != nil {
		errs = append(errs, err)
	}
	cfg.Warnings = envWarnings(environ)
	return cfg, errors.Join(errs...)
}

// Parse decodes YAML into cfg strictly: an unknown key is an error naming it.
func Parse(b []byte, cfg *Config) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(b), yaml.Strict(), yaml.DisallowUnknownField())
	if err := dec.Decode(cfg); err != nil {
		// The decoder stops at its first problem; list them all, each naming its key.
		if errs := diagnoseYAML(b); len(errs) > 0 {
			return errors.Join(errs...)
		}
		return errors.New(yaml.FormatError(err, false, true))
	}
	return nil
}

// Validate reports every problem with the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.DataDir == "" {
		add("dataDir", "must not be empty")
	}
	if c.KeyRefresh <= 0 {
		add("keyRefresh", "must be positive")
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		add("http.addr", "%q is not host:port", c.HTTP.Addr)
	}
	if (c.HTTP.TLSCert == "") != (c.HTTP.TLSKey == "") {
		add("http.tlsCert", "tlsCert and tlsKey must be set together")
	}
	if c.HTTP.MaxBodyBytes <= 0 {
		add("http.maxBodyBytes", "must be positive")
	}
	if c.HTTP.ClockSkew <= 0 {
		add("http.clockSkew", "must be positive")
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"http.readHeaderTimeout", c.HTTP.ReadHeaderTimeout}, {"http.readTimeout", c.HTTP.ReadTimeout},
		{"http.writeTimeout", c.HTTP.WriteTimeout}, {"http.idleTimeout", c.HTTP.IdleTimeout}} {
		if d.v <= 0 {
			add(d.key, "must be positive")
		}
	}
	if c.HTTP.MaxHeaderBytes <= 0 {
		add("http.maxHeaderBytes", "must be positive")
	}
	if c.HTTP.MaxConnsPerIP < 0 {
		add("http.maxConnsPerIP", "must not be negative (0: no cap)")
	}
	if a := c.Metrics.Addr; a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			add("metrics.addr", "%q is not host:port", a)
		}
	}
	if c.Metrics.Pprof && c.Metrics.Addr == "" {
		add("metrics.pprof", "requires metrics.addr: profiles are served on the metrics listener only")
	}
	if u := c.Database.URL; u != "" && !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		add("database.url", "must be empty (SQLite) or a postgres:// URL")
	}
	if c.Database.MaxConns < 0 {
		add("database.maxConns", "must not be negative")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		add("log.format", "%q is not text or json", c.Log.Format)
	}
	errs = flatten(errs, "numbers.", c.Numbers.ServiceConfig().Validate(), nil)
	errs = append(errs, c.SIP.validate()...)
	errs = append(errs, c.SMS.validate()...)
	errs = append(errs, c.TURN.validate()...)
	errs = append(errs, c.Push.validate()...)
	errs = append(errs, c.Webhooks.validate()...)
	errs = append(errs, c.Policy.validate()...)
	errs = append(errs, c.Media.validate()...)
	errs = append(errs, c.Calls.validate()...)
	errs = flatten(errs, "cluster.", c.Cluster.MemberConfig().Validate(), nil)
	if c.Console.SessionTTL < time.Minute || c.Console.SessionTTL > 7*24*time.Hour {
		add("console.sessionTTL", "%s is not between 1m and 168h", c.Console.SessionTTL)
	}
	return errors.Join(errs...)
}

// flatten appends the "key: message" errors joined in err to errs, each key prefixed, leaving
// out those whose prefixed key is in skip.
func flatten(errs []error, prefix string, err error, skip map[string]bool) []error {
	if err == nil {
		return errs
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			errs = flatten(errs, prefix, e, skip)
		}
		return errs
	}
	key, _, _ := strings.Cut(err.Error(), ": ")
	if skip[prefix+key] {
		return errs
	}
	if prefix == "" {
		return append(errs, err)
	}
	return append(errs, fmt.Errorf("%s%w", prefix, err))
}

// reported is the set of keys under prefix that errs name.
func reported(errs []error, prefix string) map[string]bool {
	keys := map[string]bool{}
	for _, e := range errs {
		if key, _, _ := strings.Cut(e.Error(), ": "); strings.HasPrefix(key, prefix) {
			keys[key] = true
		}
	}
	return keys
}

// EnvName returns the environment variable that overrides the key at path (yaml names), e.g.
// ["http","addr"] → TELGW_HTTP_ADDR and ["dataDir"] → TELGW_DATA_DIR.
func EnvName(path ...string) string {
	parts := make([]string, len(path))
	for i, p := range path {
		parts[i] = upperSnake(p)
	}
	return "TELGW_" + strings.Join(parts, "_")
}

func upperSnake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' && i > 0 {
			prev := s[i-1]
			if prev < 'A' || prev > 'Z' {
				b.WriteByte('_')
			}
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

// applyEnv walks cfg and sets every field whose TELGW_* variable is present. Scalars are parsed
// from text; slices and structs take YAML (or JSON) text.
func applyEnv(cfg *Config, environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "TELGW_") {
			env[k] = v
		}
	}
	if len(env) == 0 {
		return nil
	}
	var errs []error
	walkEnv(reflect.ValueOf(cfg).Elem(), nil, env, &errs)
	return errors.Join(errs...)
}

var durationType = reflect.TypeOf(time.Duration(0))

func walkEnv(v reflect.Value, path []string, env map[string]string, errs *[]error) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		p := append(append([]string(nil), path...), name)
		fv := v.Field(i)
		key := EnvName(p...)
		raw, set := env[key]
		if fv.Kind() == reflect.Struct && f.Type != durationType {
			if set {
				if err := yaml.UnmarshalWithOptions([]byte(raw), fv.Addr().Interface(), yaml.Strict(), yaml.DisallowUnknownField()); err != nil {
					*errs = append(*errs, fmt.Errorf("%s: %w", key, err))
				}
				continue
			}
			walkEnv(fv, p, env, errs)
			continue
		}
		if !set {
			continue
		}
		if err := setScalar(fv, raw); err != nil {
			msg := want(fv.Type(), raw, err)
			if k := fv.Kind(); k == reflect.Slice || k == reflect.Map || k == reflect.Pointer {
				msg = "want YAML or JSON text: " + firstLine(yaml.FormatError(err, false, false))
			}
			*errs = append(*errs, fmt.Errorf("%s (%s): %s", strings.Join(p, "."), key, msg))
		}
	}
}

func setScalar(fv reflect.Value, raw string) error {
	if fv.Type() == durationType {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return err
		}
		fv.SetInt(int64(d))
		return nil
	}
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return err
		}
		fv.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return err
		}
		if fv.OverflowInt(n) {
			return fmt.Errorf("%d is out of range", n)
		}
		fv.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(raw, 10, 64)
		if err != nil {
			return err
		}
		if fv.OverflowUint(n) {
			return fmt.Errorf("%d is out of range", n)
		}
		fv.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return err
		}
		fv.SetFloat(n)
	default: // slices, maps: YAML or JSON text, strictly (an unknown key is an error)
		return yaml.UnmarshalWithOptions([]byte(raw), fv.Addr().Interface(), yaml.Strict(), yaml.DisallowUnknownField())
	}
	return nil
}
