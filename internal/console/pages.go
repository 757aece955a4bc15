package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sms"
)

// Numbers is what the numbers page needs (numbers.Service).
type Numbers interface {
	List(ctx context.Context, p numbers.ListParams) ([]numbers.Number, error)
	Get(ctx context.Context, number string) (numbers.Number, error)
	SetRoute(ctx context.Context, number string, r numbers.Route) error
}

// Messages is what the messages page needs (sms.Service).
type Messages interface {
	Messages(ctx context.Context, f sms.MessageFilter) ([]sms.Message, error)
	Message(ctx context.Context, id string) (sms.Message, error)
}

// Trunk is a carrier trunk's operator view.
type Trunk struct {
	Name, Address, Transport string
	Up                       bool
	Active                   int
}

// SIP is what the overview, calls and trunks pages need (the SIP service, adapted by the app).
type SIP interface {
	Trunks() []Trunk
	ActiveCalls() int
	Routing() calls.Routing
	// SetRoutes replaces the outbound routes, as PATCH /sip with "routes" does.
	SetRoutes(ctx context.Context, routes []calls.OutboundRoute) (calls.Routing, error)
	Calls(ctx context.Context, p calls.CDRListParams) ([]calls.CDR, error)
}

// Webhooks is what the webhooks page needs: the subscriptions (events.Dispatcher) and the
// deliveries, which are jobs of the durable queue (the app adapts jobs.Runner).
type Webhooks interface {
	List(ctx context.Context) ([]events.Subscription, error)
	// Deliveries lists the newest deliveries, at most limit.
	Deliveries(ctx context.Context, limit int) ([]Delivery, error)
	// RetryNow makes a delivery run again at once (problem.ErrNotFound when unknown).
	RetryNow(ctx context.Context, id int64) error
}

// Delivery is one event on its way to one subscriber.
type Delivery struct {
	ID int64
	// State is the queue's: available, scheduled, running, retryable (failed, will try
	// again at ScheduledAt), completed, discarded (gave up) or cancelled.
	State                string
	Attempt, MaxAttempts int
	URL, EventType       string
	EventID              string
	// LastError is the latest attempt's failure ("" when none).
	LastError                           string
	CreatedAt, AttemptedAt, ScheduledAt time.Time
}

// Retryable reports whether "retry now" applies: the delivery failed and waits, or gave up.
func (d Delivery) Retryable() bool {
	return d.State == "retryable" || d.State == "discarded" || d.State == "cancelled"
}

// Registration is one registered device of a user.
type Registration struct {
	Identity, Contact, Transport, Source, UserAgent string
	Expires                                         time.Time
}

// Registrations lists this node's live registrations (the registrar's location service).
type Registrations interface {
	Registrations() []Registration
}

// pageData is what every template gets.
type pageData struct {
	Title, Nav string
	CSRF       string
	Error      string
	Notice     string
	Next       string
	Q          map[string]string
	Data       any
}

func (h *Handler) routePages() {
	h.mux.Handle("GET /console/{$}", h.authed(h.overview))
	h.mux.Handle("GET /console/numbers", h.authed(h.numbersPage))
	h.mux.Handle("POST /console/numbers/route", h.authed(h.numberRoute))
	h.mux.Handle("GET /console/messages", h.authed(h.messagesPage))
	h.mux.Handle("GET /console/messages/{id}", h.authed(h.messagePage))
	h.mux.Handle("GET /console/calls", h.authed(h.callsPage))
	h.mux.Handle("GET /console/trunks", h.authed(h.trunksPage))
	h.mux.Handle("POST /console/trunks/routes", h.authed(h.setRoutes))
	h.mux.Handle("GET /console/webhooks", h.authed(h.webhooksPage))
	h.mux.Handle("POST /console/webhooks/retry", h.authed(h.retryDelivery))
	h.mux.Handle("GET /console/users", h.authed(h.usersPage))
}

// errText is what a page shows for a service error: the message of an expected (problem)
// error, a generic line for others (logged).
func (h *Handler) errText(err error) string {
	var p *problem.Error
	if errors.As(err, &p) && p.Kind != problem.KindInternal {
		return p.Error()
	}
	h.log.Error("console", "err", err)
	return "Internal error; see the server log."
}

type overview struct {
	Ready         string
	ReadyOK       bool
	Trunks        []Trunk
	SMPP          []kv
	ActiveCalls   int
	HasSIP        bool
	MessagesMin   int
	Messages5Min  int
	MessagesLimit bool
	Registrations int
	HasUsers      bool
}

type kv struct {
	K string
	V int
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request, s *session) {
	o := overview{Ready: "ready", ReadyOK: true}
	if h.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		if err := h.cfg.Ready(ctx); err != nil {
			o.Ready, o.ReadyOK = "not ready: "+err.Error(), false
		}
		cancel()
	}
	if h.cfg.SIP != nil {
		o.HasSIP, o.Trunks, o.ActiveCalls = true, h.cfg.SIP.Trunks(), h.cfg.SIP.ActiveCalls()
	}
	if h.cfg.SMPPBound != nil {
		for k, v := range h.cfg.SMPPBound() {
			o.SMPP = append(o.SMPP, kv{k, v})
		}
		slices.SortFunc(o.SMPP, func(a, b kv) int { return strings.Compare(a.K, b.K) })
	}
	if h.cfg.Messages != nil {
		const limit = 1000
		ms, err := h.cfg.Messages.Messages(r.Context(), sms.MessageFilter{Limit: limit})
		if err == nil {
			now := h.cfg.Now()
			for _, m := range ms {
				if age := now.Sub(m.CreatedAt); age <= 5*time.Minute {
					o.Messages5Min++
					if age <= time.Minute {
						o.MessagesMin++
					}
				}
			}
			o.MessagesLimit = len(ms) == limit && o.Messages5Min == limit
		}
	}
	if h.cfg.Registrations != nil {
		o.HasUsers, o.Registrations = true, len(h.cfg.Registrations.Registrations())
	}
	h.render(w, r, http.StatusOK, "overview", s, pageData{Title: "Overview", Nav: "overview", Data: o})
}

type numberRow struct {
	numbers.Number
	Effective numbers.State
}

func (h *Handler) numbersPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := pageData{Title: "Numbers", Nav: "numbers", Q: map[string]string{"number": q.Get("number"), "areaCode": q.Get("areaCode"),
		"state": q.Get("state"), "status": q.Get("status")}}
	if q.Get("saved") != "" {
		d.Notice = "Route of " + q.Get("saved") + " saved."
	}
	if h.cfg.Numbers == nil {
		d.Error = "The numbers service is not running on this node."
		h.render(w, r, http.StatusOK, "numbers", s, d)
		return
	}
	var list []numbers.Number
	var err error
	if n := strings.TrimSpace(q.Get("number")); n != "" {
		var one numbers.Number
		if one, err = h.cfg.Numbers.Get(r.Context(), n); err == nil {
			list = []numbers.Number{one}
		}
	} else {
		list, err = h.cfg.Numbers.List(r.Context(), numbers.ListParams{AreaCode: strings.TrimSpace(q.Get("areaCode")),
			State: numbers.State(q.Get("status")), Top: 500})
	}
	if err != nil {
		d.Error = h.errText(err)
	}
	now := h.cfg.Now()
	var rows []numberRow
	for _, n := range list {
		if st := strings.TrimSpace(q.Get("state")); st != "" && !strings.EqualFold(st, n.State) {
			continue
		}
		rows = append(rows, numberRow{Number: n, Effective: n.EffectiveStatus(now)})
	}
	d.Data = rows
	h.render(w, r, http.StatusOK, "numbers", s, d)
}

func (h *Handler) numberRoute(w http.ResponseWriter, r *http.Request, s *session) {
	number := r.PostFormValue("number")
	fail := func(msg string) {
		h.render(w, r, http.StatusBadRequest, "numbers", s, pageData{Title: "Numbers", Nav: "numbers", Error: msg,
			Q: map[string]string{"number": number}})
	}
	if h.cfg.Numbers == nil {
		fail("The numbers service is not running on this node.")
		return
	}
	rt, err := numbers.ParseRoute(r.PostFormValue("route"))
	if err == nil {
		err = h.cfg.Numbers.SetRoute(r.Context(), number, rt)
	}
	if err != nil {
		fail(h.errText(err))
		return
	}
	h.log.Info("console: number route set", "number", number, "route", rt.String())
	http.Redirect(w, r, "/console/numbers?number="+urlQuery(number)+"&saved="+urlQuery(number), http.StatusSeeOther)
}

func (h *Handler) messagesPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := pageData{Title: "Messages", Nav: "messages", Q: map[string]string{"from": q.Get("from"), "to": q.Get("to"),
		"status": q.Get("status"), "before": q.Get("before")}}
	if h.cfg.Messages == nil {
		d.Error = "The SMS service is not running on this node."
		h.render(w, r, http.StatusOK, "messages", s, d)
		return
	}
	f := sms.MessageFilter{From: strings.TrimSpace(q.Get("from")), To: strings.TrimSpace(q.Get("to")), Status: sms.Status(q.Get("status")), Limit: 200}
	if b := strings.TrimSpace(q.Get("before")); b != "" {
		t, err := parseTime(b)
		if err != nil {
			d.Error = err.Error()
			h.render(w, r, http.StatusBadRequest, "messages", s, d)
			return
		}
		f.Before = t
	}
	ms, err := h.cfg.Messages.Messages(r.Context(), f)
	if err != nil {
		d.Error = h.errText(err)
	}
	d.Data = ms
	h.render(w, r, http.StatusOK, "messages", s, d)
}

// parseTime reads RFC 3339 or the datetime-local form's 2006-01-02T15:04 (UTC).
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time (want 2006-01-02T15:04, UTC)", s)
}

// step is one entry of a message's timeline.
type step struct {
	State, Detail string
	At            time.Time
	Failed        bool
}

func (h *Handler) messagePage(w http.ResponseWriter, r *http.Request, s *session) {
	d := pageData{Title: "Message", Nav: "messages"}
	if h.cfg.Messages == nil {
		d.Error = "The SMS service is not running on this node."
		h.render(w, r, http.StatusOK, "message", s, d)
		return
	}
	m, err := h.cfg.Messages.Message(r.Context(), r.PathValue("id"))
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, problem.ErrNotFound) {
			d.Error, status = "No message "+r.PathValue("id")+".", http.StatusNotFound
		} else {
			d.Error = h.errText(err)
		}
		h.render(w, r, status, "message", s, d)
		return
	}
	steps := []step{{State: "queued", At: m.CreatedAt, Detail: fmt.Sprintf("via carrier %q", m.Carrier)}}
	if !m.SentAt.IsZero() {
		steps = append(steps, step{State: "sent", At: m.SentAt, Detail: fmt.Sprintf("%d segment(s) accepted after %d attempt(s)", m.Segments, m.Attempts)})
	}
	switch m.Status {
	case sms.StatusDelivered:
		steps = append(steps, step{State: "delivered", At: m.DoneAt, Detail: m.StatusDetails})
	case sms.StatusFailed:
		steps = append(steps, step{State: "failed", At: m.DoneAt, Detail: m.StatusDetails, Failed: true})
	}
	d.Data = struct {
		M     sms.Message
		Steps []step
	}{m, steps}
	h.render(w, r, http.StatusOK, "message", s, d)
}

func (h *Handler) callsPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := pageData{Title: "Calls", Nav: "calls", Q: map[string]string{"number": q.Get("number")}}
	if h.cfg.SIP == nil {
		d.Error = "The SIP service is not running on this node."
		h.render(w, r, http.StatusOK, "calls", s, d)
		return
	}
	cdrs, err := h.cfg.SIP.Calls(r.Context(), calls.CDRListParams{Number: strings.TrimSpace(q.Get("number")), Top: 200})
	if err != nil {
		d.Error = h.errText(err)
	}
	d.Data = cdrs
	h.render(w, r, http.StatusOK, "calls", s, d)
}

type trunksData struct {
	Trunks     []Trunk
	Routing    calls.Routing
	RoutesText string
}

// routesText is the routes' editable text: one route a line, "name | pattern | trunk, trunk".
func routesText(rs []calls.OutboundRoute) string {
	var b strings.Builder
	for _, rt := range rs {
		fmt.Fprintf(&b, "%s | %s | %s\n", rt.Name, rt.NumberPattern, strings.Join(rt.Trunks, ", "))
	}
	return b.String()
}

// parseRoutes reads routesText's form back.
func parseRoutes(text string) ([]calls.OutboundRoute, error) {
	routes := []calls.OutboundRoute{}
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "|")
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want name | number pattern | trunk, trunk", i+1)
		}
		rt := calls.OutboundRoute{Name: strings.TrimSpace(f[0]), NumberPattern: strings.TrimSpace(f[1])}
		for t := range strings.SplitSeq(f[2], ",") {
			if t = strings.TrimSpace(t); t != "" {
				rt.Trunks = append(rt.Trunks, t)
			}
		}
		routes = append(routes, rt)
	}
	return routes, nil
}

func (h *Handler) trunksPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := pageData{Title: "Trunks and SIP routes", Nav: "trunks"}
	if r.URL.Query().Get("saved") != "" {
		d.Notice = "SIP routes saved; new calls use them."
	}
	if h.cfg.SIP == nil {
		d.Error = "The SIP service is not running on this node."
		h.render(w, r, http.StatusOK, "trunks", s, d)
		return
	}
	rt := h.cfg.SIP.Routing()
	d.Data = trunksData{Trunks: h.cfg.SIP.Trunks(), Routing: rt, RoutesText: routesText(rt.Routes)}
	h.render(w, r, http.StatusOK, "trunks", s, d)
}

func (h *Handler) setRoutes(w http.ResponseWriter, r *http.Request, s *session) {
	if h.cfg.SIP == nil {
		http.Error(w, "the SIP service is not running on this node", http.StatusNotFound)
		return
	}
	text := r.PostFormValue("routes")
	routes, err := parseRoutes(text)
	if err == nil {
		_, err = h.cfg.SIP.SetRoutes(r.Context(), routes)
		if err != nil {
			err = errors.New(h.errText(err))
		}
	}
	if err != nil {
		rt := h.cfg.SIP.Routing()
		h.render(w, r, http.StatusBadRequest, "trunks", s, pageData{Title: "Trunks and SIP routes", Nav: "trunks", Error: err.Error(),
			Data: trunksData{Trunks: h.cfg.SIP.Trunks(), Routing: rt, RoutesText: text}})
		return
	}
	h.log.Info("console: sip routes set", "routes", len(routes))
	http.Redirect(w, r, "/console/trunks?saved=1", http.StatusSeeOther)
}

type webhooksData struct {
	Subscriptions []events.Subscription
	Deliveries    []Delivery
}

func (h *Handler) webhooksPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := pageData{Title: "Webhooks", Nav: "webhooks"}
	if id := r.URL.Query().Get("retried"); id != "" {
		d.Notice = "Delivery " + id + " queued to run now."
	}
	if h.cfg.Webhooks == nil {
		d.Error = "Webhooks are not running on this node."
		h.render(w, r, http.StatusOK, "webhooks", s, d)
		return
	}
	var wd webhooksData
	var err error
	if wd.Subscriptions, err = h.cfg.Webhooks.List(r.Context()); err == nil {
		wd.Deliveries, err = h.cfg.Webhooks.Deliveries(r.Context(), 100)
	}
	if err != nil {
		d.Error = h.errText(err)
	}
	d.Data = wd
	h.render(w, r, http.StatusOK, "webhooks", s, d)
}

func (h *Handler) retryDelivery(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := strconv.ParseInt(r.PostFormValue("id"), 10, 64)
	if err != nil || h.cfg.Webhooks == nil {
		http.Error(w, "no such delivery", http.StatusNotFound)
		return
	}
	if err := h.cfg.Webhooks.RetryNow(r.Context(), id); err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, problem.ErrNotFound) {
			status = http.StatusNotFound
		}
		h.render(w, r, status, "webhooks", s, pageData{Title: "Webhooks", Nav: "webhooks", Error: h.errText(err), Data: webhooksData{}})
		return
	}
	h.log.Info("console: webhook delivery retried", "job_id", id)
	http.Redirect(w, r, "/console/webhooks?retried="+strconv.FormatInt(id, 10), http.StatusSeeOther)
}

type userRow struct {
	Identity string
	Devices  []Registration
}

func (h *Handler) usersPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := pageData{Title: "Users", Nav: "users"}
	if h.cfg.Registrations == nil {
		d.Error = "WebRTC users are not served on this node."
		h.render(w, r, http.StatusOK, "users", s, d)
		return
	}
	var rows []userRow
	for _, reg := range h.cfg.Registrations.Registrations() {
		if len(rows) == 0 || rows[len(rows)-1].Identity != reg.Identity {
			rows = append(rows, userRow{Identity: reg.Identity})
		}
		rows[len(rows)-1].Devices = append(rows[len(rows)-1].Devices, reg)
	}
	d.Data = rows
	h.render(w, r, http.StatusOK, "users", s, d)
}
