package app

import (
	"context"
	"io"
	"log/slog"
	"strings"

	sipgo "github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/config"
)

// NewLogger builds the process logger from log.level and log.format (text or json), writing
// to w. Every line telgw writes goes through it (see InstallLogger), so a log has one format.
func NewLogger(c config.Log, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(&dedupHandler{h: slog.NewJSONHandler(w, opts)})
	}
	return slog.New(&dedupHandler{h: slog.NewTextHandler(w, opts)})
}

// dedupHandler writes each attribute key once per line, the last value winning: loggers are
// refined with With along the way (component=sip, then component=sipgo; sipgo adds caller at
// each layer), and slog's handlers would write every one, which JSON readers reject or
// resolve arbitrarily. It keeps With's attributes itself and merges them with the record's
// at Handle; after WithGroup, the inner handler takes over as is.
type dedupHandler struct {
	h     slog.Handler
	attrs []slog.Attr
}

func (d *dedupHandler) Enabled(ctx context.Context, l slog.Level) bool { return d.h.Enabled(ctx, l) }

func (d *dedupHandler) Handle(ctx context.Context, r slog.Record) error {
	all := make([]slog.Attr, 0, len(d.attrs)+r.NumAttrs())
	all = append(all, d.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		all = append(all, a)
		return true
	})
	idx := make(map[string]int, len(all))
	out := all[:0]
	for _, a := range all {
		if i, ok := idx[a.Key]; ok {
			out[i] = a // last wins, in the first one's place
			continue
		}
		idx[a.Key] = len(out)
		out = append(out, a)
	}
	nr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	nr.AddAttrs(out...)
	return d.h.Handle(ctx, nr)
}

func (d *dedupHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &dedupHandler{h: d.h, attrs: append(append([]slog.Attr{}, d.attrs...), as...)}
}

func (d *dedupHandler) WithGroup(name string) slog.Handler {
	h := d.h
	if len(d.attrs) > 0 {
		h = h.WithAttrs(d.attrs)
	}
	return h.WithGroup(name)
}

// InstallLogger makes log the destination of libraries that log on their own: the standard
// library's log package and slog.Default (pion, net/http stragglers) and sipgo's package
// logger, which is kept to warnings (its info lines are per-request chatter) and whose known
// reference-count noise ("WS ref went negative" on a connection both sides closed) is demoted
// to debug. `telgw serve` calls it once; tests do not, so they keep their own defaults.
func InstallLogger(log *slog.Logger) {
	slog.SetDefault(log)
	sipgo.SetDefaultLogger(slog.New(&shiftHandler{h: log.Handler(), below: slog.LevelWarn, noise: []string{"ref went negative"}}).
		With("component", "sipgo"))
}

// quiet returns log with records below Warn demoted to Debug: River reports every client
// start, queue start and leadership change at Info, which buries telgw's own lines.
func quiet(log *slog.Logger) *slog.Logger {
	return slog.New(&shiftHandler{h: log.Handler(), below: slog.LevelWarn})
}

// shiftHandler demotes records below the level below, and records whose message contains one
// of noise, to Debug.
type shiftHandler struct {
	h     slog.Handler
	below slog.Level
	noise []string
}

func (s *shiftHandler) Enabled(ctx context.Context, l slog.Level) bool {
	if l < s.below || len(s.noise) > 0 {
		return s.h.Enabled(ctx, slog.LevelDebug) || (l >= s.below && s.h.Enabled(ctx, l))
	}
	return s.h.Enabled(ctx, l)
}

func (s *shiftHandler) Handle(ctx context.Context, r slog.Record) error {
	demote := r.Level < s.below
	for _, n := range s.noise {
		demote = demote || strings.Contains(r.Message, n)
	}
	if demote {
		if !s.h.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r = r.Clone()
		r.Level = slog.LevelDebug
	}
	return s.h.Handle(ctx, r)
}

func (s *shiftHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &shiftHandler{h: s.h.WithAttrs(as), below: s.below, noise: s.noise}
}

func (s *shiftHandler) WithGroup(name string) slog.Handler {
	return &shiftHandler{h: s.h.WithGroup(name), below: s.below, noise: s.noise}
}
