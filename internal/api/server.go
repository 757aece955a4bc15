// Package api is telgw's REST edge: a chi router serving the ACS data-plane contract (HMAC
// access-key auth, ACS error bodies, api-version per route family) plus telgw's operator routes
// under /telgw/. Domains stay HTTP-free; their handlers live here, one file per domain.
package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/telgw/telgw/internal/problem"
)

// DefaultMaxBodyBytes is the default cap on request bodies (docs/CONFIG.md http.maxBodyBytes).
const DefaultMaxBodyBytes = 1 << 20

// Config configures the server.
type Config struct {
	// MaxBodyBytes caps request bodies. Default DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64
	// PublicURL is the base URL clients reach telgw at (for Operation-Location, nextLink).
	PublicURL string
	// Logger receives the access log and errors.
	Logger *slog.Logger
	// Verifier authenticates ACS HMAC requests.
	Verifier *Verifier
	// Registry receives the HTTP metrics; /metrics serves it.
	Registry *prometheus.Registry
	// Ready reports readiness for /readyz (store reachable, listeners up).
	Ready func(context.Context) error
	// MetricsElsewhere leaves /metrics off this router (metrics.addr serves MetricsHandler on
	// a listener of its own). Default false: /metrics is served here.
	MetricsElsewhere bool
}

// Server is the HTTP handler.
type Server struct {
	cfg     Config
	log     *slog.Logger
	router  chi.Router
	authed  chi.Router
	metrics *httpMetrics
	ready   atomic.Bool
}

// New builds the router with health, metrics and the authenticated group; domains are mounted
// with the Mount* methods.
func New(cfg Config) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, metrics: newHTTPMetrics(cfg.Registry)}
	r := chi.NewRouter()
	r.Use(s.requestID, s.accessLog, s.recoverer)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, s.log, problem.NotFound("path", "no route for %s %s", r.Method, r.URL.Path).WithCode("NotFound"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusMethodNotAllowed, ErrorBody{Error: ErrorDetail{Code: "MethodNotAllowed",
			Message: r.Method + " is not allowed on " + r.URL.Path}})
	})
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", s.readyz)
	if !cfg.MetricsElsewhere {
		r.Method(http.MethodGet, "/metrics", s.MetricsHandler())
	}
	s.authed = r.With(s.authenticate)
	s.router = r
	s.mountOpenAPI()
	return s
}

// MetricsHandler serves the registry in the Prometheus exposition format.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// Router exposes the root router for unauthenticated routes of other transports (e.g. the SIP
// WebSocket endpoint, which authenticates with user tokens).
func (s *Server) Router() chi.Router { return s.router }

// Authed returns the router group that requires ACS HMAC authentication.
func (s *Server) Authed() chi.Router { return s.authed }

// SetReady marks the listeners up (readiness still also requires Config.Ready).
func (s *Server) SetReady(v bool) { s.ready.Store(v) }

// PublicURL is the base URL for links back to telgw (with a trailing slash).
func (s *Server) PublicURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/") + "/"
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/"
}

// Logger returns the server's logger.
func (s *Server) Logger() *slog.Logger { return s.log }

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
		return
	}
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
			return
		}
	}
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

type ctxKey int

const requestIDKey ctxKey = 0

// RequestID returns the id of the request in ctx.
func RequestID(ctx context.Context) string {
	v, _ := ctx.Value(requestIDKey).(string)
	return v
}

// requestID assigns every request an id, echoed as x-ms-request-id; a client's
// x-ms-client-request-id is echoed back unchanged, as ACS does.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := uuid.NewString()
		// Canonical keys set directly: Header.Set would canonicalise them on every request.
		h := w.Header()
		h["X-Ms-Request-Id"] = []string{id}
		if c := header(r.Header, "X-Ms-Client-Request-Id"); c != "" {
			h["X-Ms-Client-Request-Id"] = []string{c}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer (hijack for WebSockets).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		d := time.Since(start)
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		s.metrics.observe(route, r.Method, sw.status, d)
		if r.URL.Path == "/healthz" || r.URL.Path == "/metrics" || r.URL.Path == "/readyz" || !s.log.Enabled(r.Context(), slog.LevelInfo) {
			return
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "http",
			slog.String("request_id", RequestID(r.Context())), slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Int("status", sw.status), slog.Int("bytes", sw.bytes),
			slog.Duration("duration", d), slog.String("remote", r.RemoteAddr))
	})
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic in handler", "request_id", RequestID(r.Context()), "panic", v)
				WriteError(w, r, nil, errors.New("panic"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// authenticate checks the ACS HMAC headers first (so an unauthenticated request is answered
// 401 without waiting for its body), then reads the whole (size-limited) body, verifies the
// signature over it and hands handlers a fresh reader of the same bytes.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pre, err := s.cfg.Verifier.Precheck(r.Header)
		if err == nil && r.ContentLength > s.cfg.MaxBodyBytes {
			err = tooLarge(s.cfg.MaxBodyBytes)
		}
		if err != nil {
			closeUnread(w, r)
			WriteError(w, r, s.log, err)
			return
		}
		body, err := readBody(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes), r.ContentLength)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				WriteError(w, r, s.log, tooLarge(mbe.Limit))
				return
			}
			WriteError(w, r, s.log, problem.Invalid("body", "could not read request body"))
			return
		}
		if err := s.cfg.Verifier.verifyBody(pre, r.Method, r.RequestURI, r.Host, r.Header, body); err != nil {
			WriteError(w, r, s.log, err)
			return
		}
		r.Body = &bodyBytes{Reader: bytes.NewReader(body), b: body}
		next.ServeHTTP(w, r)
	})
}

// readBody reads a request body whole: into one buffer of its announced length when it has
// one (io.ReadAll grows its buffer from 512 bytes). The announced length is the client's word
// and the body is not authenticated yet, so at most preallocMax is reserved before bytes
// arrive: a client announcing large bodies it never sends must not make us hold that memory.
func readBody(r io.Reader, length int64) ([]byte, error) {
	if length <= 0 {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, min(length, preallocMax)+1) // +1: reading past the end finds io.EOF without growing
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // longer than reserved (or announced: net/http stops that): grow
		}
	}
}

// preallocMax caps what readBody reserves on the strength of a Content-Length header.
const preallocMax = 64 << 10

// bodyBytes is the request body authenticate read and verified: handlers read it as any
// body, and DecodeJSON takes its bytes without copying them.
type bodyBytes struct {
	*bytes.Reader
	b []byte
}

// Close implements io.Closer.
func (*bodyBytes) Close() error { return nil }

// closeUnread marks the connection of a request refused before its body was read to be closed
// after the answer: otherwise net/http drains the body before answering, and a client sending
// it slowly holds the answer (and the connection) back.
func closeUnread(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
}

// APIVersions returns middleware that requires the api-version query parameter to be one of
// versions (ACS answers a missing or unknown version with 400).
func APIVersions(versions ...string) func(http.Handler) http.Handler {
	list := strings.Join(versions, ", ")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v := queryValue(r.URL.RawQuery, "api-version")
			if v == "" {
				WriteError(w, r, nil, problem.Invalid("api-version", "the api-version query parameter is required; supported: %s", list).
					WithCode("MissingApiVersionParameter"))
				return
			}
			if !slices.Contains(versions, v) {
				WriteError(w, r, nil, problem.Invalid("api-version", "unsupported api-version %q; supported: %s", v, list).
					WithCode("UnsupportedApiVersion"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// queryValue is url.Values.Get of the raw query without building the whole map: the first
// value of key (decoded as url.ParseQuery does), or "".
func queryValue(raw, key string) string {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if strings.ContainsAny(k, "%+;") || strings.ContainsAny(v, "%+;") {
			return (&url.URL{RawQuery: kv + "&" + raw}).Query().Get(key) // escapes, or what ParseQuery refuses: its own answer
		}
		if k == key {
			return v
		}
	}
	return ""
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// series caches each (route, method, code)'s counter and histogram: the labels are
	// bounded (routes, methodLabel, status codes), and looking them up hashes every label.
	series sync.Map // seriesKey → httpSeries
}

type seriesKey struct {
	route, method string
	status        int
}

type httpSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "telgw_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "telgw_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

func (m *httpMetrics) observe(route, method string, status int, d time.Duration) {
	k := seriesKey{route, methodLabel(method), status}
	v, ok := m.series.Load(k)
	if !ok {
		v, _ = m.series.LoadOrStore(k, httpSeries{requests: m.requests.WithLabelValues(k.route, k.method, strconv.Itoa(status)),
			duration: m.duration.WithLabelValues(route)})
	}
	sr := v.(httpSeries)
	sr.requests.Inc()
	sr.duration.Observe(d.Seconds())
}

// methodLabel bounds the method label: the RFC 9110 §9 methods (and PATCH) are themselves,
// anything else is "other", so a client inventing methods cannot create series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "other"
}
