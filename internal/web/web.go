// Package web serves telgw's browser softphone: a plain HTML/JS page with JsSIP 3.13.8 (bundled
// once with esbuild and committed, see static/jssip-3.13.8.min.js) that registers a WebRTC user
// over SIP over WebSocket (RFC 7118) on the same origin, authenticated by the user's access token
// as `Authorization: Bearer` (RFC 8898), and places and answers calls telgw bridges to the PSTN.
//
// Routes, relative to Config.Prefix (default /phone):
//
//	GET {prefix}              → 301 to {prefix}/ (so the page's relative URLs resolve)
//	GET {prefix}/             the page
//	GET {prefix}/config.json  {"wsPath","icePath","statusPath","tokenURL","domain"} for the page
//	GET {prefix}/*.js|*.css   assets
//
// ICE servers (ICEHandler) and the user's status (StatusHandler: no number assigned, no
// outbound route) come from separate JSON endpoints that need the user's token.
package web

import (
	"embed"
	"encoding/json"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed static/index.html static/phone.js static/phone.css static/jssip-3.13.8.min.js
var static embed.FS

// Config configures the softphone page.
type Config struct {
	// Prefix is the path the page lives under. Default "/phone".
	Prefix string
	// WSPath is the same-origin SIP-over-WebSocket path the page connects to (ws:// on http,
	// wss:// on https). Default "/sip/ws".
	WSPath string
	// ICEPath is the ICE servers endpoint (ICEHandler). Default Prefix + "/ice".
	ICEPath string
	// StatusPath is the user status endpoint (StatusHandler). Default Prefix + "/status".
	StatusPath string
	// TokenURL, when set, shows a "Fetch token" button that GETs it (with cookies) and expects
	// {"token": "…"} or the ACS shape {"accessToken": {"token": "…"}}: the operator's own
	// backend, which knows who the visitor is. Default "": tokens are pasted.
	TokenURL string
	// Domain is the SIP domain of the user's URI and of dialled numbers. Default: the page's host
	// name.
	Domain string
}

func (c *Config) defaults() {
	if c.Prefix == "" {
		c.Prefix = "/phone"
	}
	c.Prefix = "/" + strings.Trim(c.Prefix, "/")
	if c.WSPath == "" {
		c.WSPath = "/sip/ws"
	}
	if c.ICEPath == "" {
		c.ICEPath = c.Prefix + "/ice"
	}
	if c.StatusPath == "" {
		c.StatusPath = c.Prefix + "/status"
	}
}

// Handler serves the softphone at /phone with the default Config. Mount it for "/phone" and
// "/phone/*".
func Handler() http.Handler { return NewHandler(Config{}) }

// NewHandler serves the softphone as cfg says. It answers only under cfg.Prefix (404
// elsewhere); mount it for cfg.Prefix and cfg.Prefix + "/*".
func NewHandler(cfg Config) http.Handler {
	cfg.defaults()
	sub, _ := fs.Sub(static, "static")
	pageConfig, _ := json.Marshal(map[string]string{
		"wsPath": cfg.WSPath, "icePath": cfg.ICEPath, "statusPath": cfg.StatusPath, "tokenURL": cfg.TokenURL, "domain": cfg.Domain,
	})
	connect := "'self' ws: wss:"
	if cfg.TokenURL != "" && strings.Contains(cfg.TokenURL, "://") {
		connect += " " + cfg.TokenURL
	}
	// The page runs only its own scripts; microphone access is asked for by the page itself.
	csp := "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob: mediastream:; connect-src " + connect + "; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, cfg.Prefix)
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		switch rest {
		case "":
			http.Redirect(w, r, cfg.Prefix+"/", http.StatusMovedPermanently)
			return
		case "/", "/index.html":
			rest = "/index.html"
			h.Set("Content-Security-Policy", csp)
			h.Set("Cache-Control", "no-cache")
		case "/config.json":
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "no-store")
			_, _ = w.Write(pageConfig)
			return
		case "/phone.js", "/phone.css":
			h.Set("Cache-Control", "no-cache")
		case "/jssip-3.13.8.min.js":
			// Versioned name: cache it for good.
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		default:
			http.NotFound(w, r)
			return
		}
		b, err := fs.ReadFile(sub, strings.TrimPrefix(rest, "/"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		ct := mime.TypeByExtension(path.Ext(rest))
		if ct == "" || strings.HasPrefix(ct, "text/javascript") {
			ct = "text/javascript; charset=utf-8"
		}
		if strings.HasSuffix(rest, ".html") {
			ct = "text/html; charset=utf-8"
		}
		h.Set("Content-Type", ct)
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(b)
	})
}
