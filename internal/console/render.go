package console

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"time"
)

// pages are the templates under templates/, each rendered inside layout.html.
var pages = []string{"signin", "link", "error", "overview", "numbers", "messages", "message", "calls", "trunks", "webhooks", "users"}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"dur": func(d time.Duration) string { return d.Round(time.Second).String() },
	"deref": func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return *t
	},
}

func (h *Handler) parseTemplates() error {
	h.tmpl = map[string]*template.Template{}
	for _, p := range pages {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return fmt.Errorf("console template %s: %w", p, err)
		}
		h.tmpl[p] = t
	}
	return nil
}

// render writes page with status; s is nil on the sign-in pages (no navigation, no token).
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, page string, s *session, d pageData) {
	if s != nil {
		d.CSRF = s.csrf
	}
	var buf bytes.Buffer
	if err := h.tmpl[page].Execute(&buf, struct {
		pageData
		SignedIn bool
	}{d, s != nil}); err != nil {
		h.log.Error("console render", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

func urlQuery(s string) string { return url.QueryEscape(s) }
