// Package console is telgw's operator web console at /console/ on the HTTP listener:
// server-rendered pages (html/template, embedded CSS, no CDN, no front-end framework) over the
// domain services — overview, numbers (with route editing), messages, calls, trunks and SIP
// routes (with route editing), webhooks and registered users.
//
// Everything but the sign-in pages and static assets needs a session. An operator signs in with
// an access key (compared in constant time with the current primary and secondary keys) or a
// single-use link from `telgw console link`. Sessions are server-side rows in the store (shared
// by every node, surviving restarts): the browser holds a random secret in an HttpOnly,
// SameSite=Strict cookie (Secure over HTTPS), the store only its SHA-256. A session remembers
// which access key opened it; rotating that key ends it. Every POST carries the session's CSRF
// token (checked in constant time) and must come from the console's own origin (Origin, or
// Referer when Origin is absent). Failed sign-ins are rate limited per client IP.
package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/telgw/telgw/internal/problem"
)

// Defaults.
const (
	// DefaultSessionTTL is how long a console session lasts after sign-in.
	DefaultSessionTTL = 12 * time.Hour
	// DefaultMaxFailures is how many failed sign-ins one IP may make per FailureWindow.
	DefaultMaxFailures = 10
	// DefaultFailureWindow is the window failed sign-ins are counted in.
	DefaultFailureWindow = 10 * time.Minute
)

// CookieName is the session cookie.
const CookieName = "telgw_console"

// Prefix is where the console is mounted.
const Prefix = "/console/"

//go:embed templates/*.html static/*
var assets embed.FS

// Config configures the console. Only Store and Keys are required; a nil service hides or
// empties its page.
type Config struct {
	// Store keeps sessions and sign-in links.
	Store Store
	// Keys returns the current primary and secondary access keys (keys.Ring.Current()).
	Keys func() (primary, secondary []byte)
	// SessionTTL is a session's lifetime. Default DefaultSessionTTL (12h).
	SessionTTL time.Duration
	// PublicURL, when set, is the base URL operators reach telgw at (behind a proxy): its
	// origin is accepted for POSTs and an https one makes the cookie Secure.
	PublicURL string
	// MaxFailures and FailureWindow rate-limit failed sign-ins per client IP. Defaults
	// DefaultMaxFailures per DefaultFailureWindow.
	MaxFailures   int
	FailureWindow time.Duration
	// Logger receives sign-in events (never secrets).
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time

	// Ready reports readiness (the /readyz check).
	Ready func(ctx context.Context) error
	// Numbers, Messages, SIP, Webhooks and Registrations back the pages.
	Numbers       Numbers
	Messages      Messages
	SIP           SIP
	Webhooks      Webhooks
	Registrations Registrations
	// SMPPBound returns bound SMPP links by carrier (from the metrics).
	SMPPBound func() map[string]int
}

// Handler serves /console/.
type Handler struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	tmpl    map[string]*template.Template
	limiter *limiter
}

// New builds the console handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Store == nil || cfg.Keys == nil {
		return nil, errors.New("console: Store and Keys are required")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = DefaultMaxFailures
	}
	if cfg.FailureWindow <= 0 {
		cfg.FailureWindow = DefaultFailureWindow
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(),
		limiter: newLimiter(cfg.MaxFailures, cfg.FailureWindow, cfg.Now)}
	if err := h.parseTemplates(); err != nil {
		return nil, err
	}
	static, _ := fs.Sub(assets, "static")
	h.mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", staticHandler(static)))
	h.mux.HandleFunc("GET /console/signin", h.signinPage)
	h.mux.HandleFunc("POST /console/signin", h.signin)
	h.mux.HandleFunc("GET /console/link", h.linkPage)
	h.mux.HandleFunc("POST /console/link", h.linkSignin)
	h.mux.Handle("POST /console/signout", h.authed(h.signout))
	h.routePages()
	h.mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		h.authed(func(w http.ResponseWriter, r *http.Request, s *session) {
			h.render(w, r, http.StatusNotFound, "error", s, pageData{Title: "Not found", Error: "No console page at " + r.URL.Path})
		}).ServeHTTP(w, r)
	})
	return h, nil
}

// ServeHTTP implements http.Handler. Responses are never cached or framed by other sites.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	if r.URL.Path == "/console" {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	h.mux.ServeHTTP(w, r)
}

func staticHandler(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// session is a signed-in browser.
type session struct {
	hash string
	csrf string
}

// authed wraps a page: without a live session GETs are redirected to sign-in (other methods
// get 401); POSTs must pass the CSRF and origin checks.
func (h *Handler) authed(next func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := h.session(r)
		if err != nil {
			h.clearCookie(w, r)
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				next := r.URL.Path
				if r.URL.RawQuery != "" {
					next += "?" + r.URL.RawQuery
				}
				http.Redirect(w, r, "/console/signin?next="+url.QueryEscape(next), http.StatusSeeOther)
				return
			}
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			if !h.sameOrigin(r) {
				http.Error(w, "cross-origin request refused", http.StatusForbidden)
				return
			}
			got := r.PostFormValue("csrf")
			if subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
				http.Error(w, "missing or wrong CSRF token; reload the page", http.StatusForbidden)
				return
			}
		}
		next(w, r, s)
	})
}

// session finds the request's live session; a session opened with a key that is no longer
// current is deleted (key rotation signs it out).
func (h *Handler) session(r *http.Request) (*session, error) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return nil, problem.ErrNotFound
	}
	hash := HashSecret(c.Value)
	t, err := h.cfg.Store.ConsoleTokenGet(r.Context(), hash, KindSession, h.cfg.Now())
	if err != nil {
		return nil, err
	}
	if !h.keyCurrent(t.KeyFP) {
		_ = h.cfg.Store.ConsoleTokenDelete(r.Context(), hash)
		return nil, problem.ErrNotFound
	}
	return &session{hash: hash, csrf: t.CSRF}, nil
}

// keyCurrent reports whether fp is the fingerprint of the current primary or secondary key.
func (h *Handler) keyCurrent(fp string) bool {
	p, s := h.cfg.Keys()
	ok := 0
	for _, k := range [][]byte{p, s} {
		if len(k) > 0 {
			ok |= subtle.ConstantTimeCompare([]byte(KeyFingerprint(k)), []byte(fp))
		}
	}
	return ok == 1
}

// matchKey compares a submitted access key (base64, or a whole connection string) with the
// current keys in constant time and returns the matching key's fingerprint.
func (h *Handler) matchKey(submitted string) (string, bool) {
	submitted = strings.TrimSpace(submitted)
	if i := strings.Index(strings.ToLower(submitted), "accesskey="); i >= 0 {
		submitted = submitted[i+len("accesskey="):]
		if j := strings.IndexByte(submitted, ';'); j >= 0 {
			submitted = submitted[:j]
		}
	}
	given, err := base64.StdEncoding.DecodeString(submitted)
	if err != nil || len(given) == 0 {
		given = []byte(submitted) // still compared, so a malformed key takes the same time
	}
	gh := sha256.Sum256(given)
	p, s := h.cfg.Keys()
	fp, found := "", 0
	for _, k := range [][]byte{p, s} {
		if len(k) == 0 {
			continue
		}
		kh := sha256.Sum256(k)
		if subtle.ConstantTimeCompare(gh[:], kh[:]) == 1 {
			fp, found = KeyFingerprint(k), 1
		}
	}
	return fp, found == 1 && len(given) > 0
}

// sameOrigin checks Origin (or Referer when a browser sent no Origin) against the console's
// own origin: the request's scheme and Host, or Config.PublicURL's origin.
func (h *Handler) sameOrigin(r *http.Request) bool {
	src := r.Header.Get("Origin")
	if src == "" || src == "null" {
		ref := r.Header.Get("Referer")
		if ref == "" {
			return false
		}
		u, err := url.Parse(ref)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return false
		}
		src = u.Scheme + "://" + u.Host
	}
	src = strings.ToLower(strings.TrimRight(src, "/"))
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if src == strings.ToLower(scheme+"://"+r.Host) {
		return true
	}
	if h.cfg.PublicURL != "" {
		if u, err := url.Parse(h.cfg.PublicURL); err == nil && src == strings.ToLower(u.Scheme+"://"+u.Host) {
			return true
		}
	}
	return false
}

// secure reports whether the browser reached the console over HTTPS.
func (h *Handler) secure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(strings.ToLower(h.cfg.PublicURL), "https://")
}

func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, secret string) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: secret, Path: Prefix, MaxAge: int(h.cfg.SessionTTL / time.Second),
		HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteStrictMode})
}

func (h *Handler) clearCookie(w http.ResponseWriter, r *http.Request) {
	if _, err := r.Cookie(CookieName); err != nil {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: Prefix, MaxAge: -1,
		HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteStrictMode})
}

// startSession opens a new session (always a fresh id: no fixation) for the key with
// fingerprint fp and sets its cookie.
func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, fp string) error {
	secret := NewSecret()
	now := h.cfg.Now().UTC().Truncate(time.Millisecond)
	err := h.cfg.Store.ConsoleTokenPut(r.Context(), Token{Hash: HashSecret(secret), Kind: KindSession, CSRF: NewSecret(),
		KeyFP: fp, CreatedAt: now, ExpiresAt: now.Add(h.cfg.SessionTTL)})
	if err != nil {
		return err
	}
	h.setCookie(w, r, secret)
	return nil
}

// clientIP is the connection's peer address (no forwarding headers are trusted).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// safeNext keeps a post-sign-in redirect inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix
	}
	return next
}

func (h *Handler) signinPage(w http.ResponseWriter, r *http.Request) {
	if _, err := h.session(r); err == nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	h.render(w, r, http.StatusOK, "signin", nil, pageData{Title: "Sign in", Next: safeNext(r.URL.Query().Get("next"))})
}

func (h *Handler) signin(w http.ResponseWriter, r *http.Request) {
	ip := clientIP(r)
	next := safeNext(r.PostFormValue("next"))
	fail := func(status int, msg string) {
		h.render(w, r, status, "signin", nil, pageData{Title: "Sign in", Next: next, Error: msg})
	}
	if !h.sameOrigin(r) {
		fail(http.StatusForbidden, "Sign-in refused: the form was not posted from this console.")
		return
	}
	if !h.limiter.allow(ip) {
		w.Header().Set("Retry-After", "600")
		fail(http.StatusTooManyRequests, "Too many failed sign-ins from your address; try again later.")
		return
	}
	fp, ok := h.matchKey(r.PostFormValue("key"))
	if !ok {
		h.limiter.fail(ip)
		h.log.Warn("console sign-in failed", "ip", ip)
		fail(http.StatusUnauthorized, "That is not a current access key.")
		return
	}
	if err := h.startSession(w, r, fp); err != nil {
		h.log.Error("console session", "err", err)
		fail(http.StatusInternalServerError, "Could not start a session; see the server log.")
		return
	}
	h.log.Info("console sign-in", "ip", ip, "method", "access-key")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Handler) linkPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "link", nil, pageData{Title: "Sign in with a link"})
}

func (h *Handler) linkSignin(w http.ResponseWriter, r *http.Request) {
	ip := clientIP(r)
	fail := func(status int, msg string) {
		h.render(w, r, status, "link", nil, pageData{Title: "Sign in with a link", Error: msg})
	}
	if !h.sameOrigin(r) {
		fail(http.StatusForbidden, "Sign-in refused: the form was not posted from this console.")
		return
	}
	if !h.limiter.allow(ip) {
		w.Header().Set("Retry-After", "600")
		fail(http.StatusTooManyRequests, "Too many failed sign-ins from your address; try again later.")
		return
	}
	secret := strings.TrimSpace(r.PostFormValue("token"))
	var t Token
	var err error = problem.ErrNotFound
	if secret != "" && len(secret) <= 128 {
		t, err = h.cfg.Store.ConsoleTokenTake(r.Context(), HashSecret(secret), KindLink, h.cfg.Now())
	}
	if err == nil && !h.keyCurrent(t.KeyFP) {
		err = problem.ErrNotFound // issued under a key rotated since
	}
	if err != nil {
		if !errors.Is(err, problem.ErrNotFound) {
			h.log.Error("console link", "err", err)
		}
		h.limiter.fail(ip)
		h.log.Warn("console link sign-in failed", "ip", ip)
		fail(http.StatusUnauthorized, "This sign-in link is unknown, used or expired. Run `telgw console link` for a new one.")
		return
	}
	if err := h.startSession(w, r, t.KeyFP); err != nil {
		h.log.Error("console session", "err", err)
		fail(http.StatusInternalServerError, "Could not start a session; see the server log.")
		return
	}
	h.log.Info("console sign-in", "ip", ip, "method", "link")
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (h *Handler) signout(w http.ResponseWriter, r *http.Request, s *session) {
	if err := h.cfg.Store.ConsoleTokenDelete(r.Context(), s.hash); err != nil {
		h.log.Error("console sign-out", "err", err)
	}
	h.clearCookie(w, r)
	http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
}

// Sweep deletes expired sessions and links every interval until ctx ends.
func (h *Handler) Sweep(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := h.cfg.Store.ConsoleTokenSweep(ctx, h.cfg.Now()); err != nil && ctx.Err() == nil {
				h.log.Warn("console token sweep", "err", err)
			}
		}
	}
}
