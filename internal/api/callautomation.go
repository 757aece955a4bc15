package api

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/e164"
	"github.com/telgw/telgw/internal/problem"
)

// CallAutomationAPIVersions are the Call Automation api-versions telgw accepts: the spec's
// 2025-05-15 and the 2026-03-12 the npm SDK 1.6.0 sends.
var CallAutomationAPIVersions = []string{"2025-05-15", "2026-03-12"}

type callAutomationHandlers struct {
	s      *Server
	a      *calls.Automation
	repeat *repeatCache
	ops    *prometheus.CounterVec
}

// MountCallAutomation serves the ACS Call Automation API (communicationservicescallautomation
// 2025-05-15) that telgw implements so far:
//
//	POST   /calling/callConnections                           CreateCall → 201 (one PSTN target)
//	POST   /calling/callConnections:answer                    AnswerCall → 200 CallConnectionProperties
//	POST   /calling/callConnections:reject                    RejectCall → 204
//	POST   /calling/callConnections:redirect                  RedirectCall → 204
//	GET    /calling/callConnections/{callConnectionId}        GetCall → 200
//	DELETE /calling/callConnections/{callConnectionId}        HangupCall → 204
//	POST   /calling/callConnections/{callConnectionId}:terminate  TerminateCall → 204
//
// and the participants operations and transferToParticipant (callautomation_participants.go).
//
// POSTs honour Repeatability-Request-ID: a repeat within repeatWindow gets the first answer
// again without doing the operation twice.
func (s *Server) MountCallAutomation(a *calls.Automation) {
	h := &callAutomationHandlers{s: s, a: a, repeat: newRepeatCache(repeatWindow, 10000),
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "telgw_callautomation_operations_total",
			Help: "Call Automation operations by operation (create, answer, reject, redirect, get, hangup, terminate, transferToParticipant, getParticipants, getParticipant, addParticipant, removeParticipant, mute, cancelAddParticipant, play, recognize, sendDtmfTones, cancelAllMediaOperations, hold, unhold, startContinuousDtmfRecognition, stopContinuousDtmfRecognition, other) and result (ok or the error class).",
		}, []string{"operation", "result"})}
	s.cfg.Registry.MustRegister(h.ops)
	s.authed.Group(func(r chi.Router) {
		r.Use(APIVersions(CallAutomationAPIVersions...))
		r.With(h.repeat.middleware).Post("/calling/callConnections", h.count("create", h.create))
		r.With(h.repeat.middleware).Post("/calling/callConnections:answer", h.count("answer", h.answer))
		r.With(h.repeat.middleware).Post("/calling/callConnections:reject", h.count("reject", h.reject))
		r.With(h.repeat.middleware).Post("/calling/callConnections:redirect", h.count("redirect", h.redirect))
		r.Get("/calling/callConnections/{callConnectionId}", h.count("get", h.get))
		r.Delete("/calling/callConnections/{callConnectionId}", h.count("hangup", h.hangUp))
		// chi parameters end at '/', so "{id}:terminate" arrives whole: the action is split
		// off in the handler.
		r.With(h.repeat.middleware).Post("/calling/callConnections/{callConnectionAction}", h.count("action", h.action))
		h.mountParticipants(r)
	})
}

// count counts an operation by its result, read from the status it answered.
func (h *callAutomationHandlers) count(op string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := op // per request: the closure's op is shared by every request
		if op == "action" {
			_, act, _ := strings.Cut(PathParam(r, "callConnectionAction"), ":")
			switch act {
			case "terminate", "transferToParticipant", "play", "recognize", "sendDtmfTones", "cancelAllMediaOperations",
				"hold", "unhold", "startContinuousDtmfRecognition", "stopContinuousDtmfRecognition":
				name = act
			default:
				name = "other"
			}
		}
		sw := &statusWriter{ResponseWriter: w}
		next(sw, r)
		h.ops.WithLabelValues(name, resultOf(sw.status)).Inc()
	}
}

func resultOf(status int) string {
	switch {
	case status < 400:
		return "ok"
	case status == http.StatusBadRequest:
		return "invalid"
	case status == http.StatusNotFound:
		return "not_found"
	case status == http.StatusConflict:
		return "conflict"
	case status == http.StatusForbidden:
		return "forbidden"
	case status == http.StatusNotImplemented:
		return "unsupported"
	case status == http.StatusServiceUnavailable:
		return "unavailable"
	}
	return "error"
}

// identifierJSON is CommunicationIdentifierModel (common 2023-11-15).
type identifierJSON struct {
	Kind              string       `json:"kind,omitempty"`
	RawID             string       `json:"rawId,omitempty"`
	CommunicationUser *userIDJSON  `json:"communicationUser,omitempty"`
	PhoneNumber       *phoneIDJSON `json:"phoneNumber,omitempty"`
}

type userIDJSON struct {
	ID string `json:"id"`
}

type phoneIDJSON struct {
	Value string `json:"value"`
}

func identifierOf(p calls.Participant) identifierJSON {
	switch p.Kind {
	case calls.PhoneNumber:
		return identifierJSON{Kind: "phoneNumber", RawID: "4:" + p.ID, PhoneNumber: &phoneIDJSON{Value: p.ID}}
	case calls.CommunicationUser:
		return identifierJSON{Kind: "communicationUser", RawID: p.ID, CommunicationUser: &userIDJSON{ID: p.ID}}
	}
	return identifierJSON{Kind: "unknown", RawID: p.ID}
}

// participant reads an identifier from a request (kind may be missing: requests need not send
// it; rawId alone is accepted).
func (id *identifierJSON) participant(field string) (calls.Participant, error) {
	switch {
	case id == nil:
		return calls.Participant{}, problem.Invalid(field, "%s is required", field).WithCode("BadRequest")
	case id.PhoneNumber != nil:
		return phone(field, id.PhoneNumber.Value)
	case id.CommunicationUser != nil && id.CommunicationUser.ID != "":
		return calls.User(id.CommunicationUser.ID), nil
	case strings.HasPrefix(id.RawID, "4:"):
		return phone(field, strings.TrimPrefix(id.RawID, "4:"))
	case strings.HasPrefix(id.RawID, "8:acs:"):
		return calls.User(id.RawID), nil
	}
	return calls.Participant{}, problem.Invalid(field, "%s must be a phone number or a communication user", field).WithCode("BadRequest")
}

func phone(field, v string) (calls.Participant, error) {
	n, err := e164.Normalize(v)
	if err != nil {
		return calls.Participant{}, problem.Invalid(field, "%q is not an E.164 phone number", v).WithCode("BadRequest")
	}
	return calls.Phone(n), nil
}

// callConnectionJSON is CallConnectionProperties.
type callConnectionJSON struct {
	CallConnectionID     string           `json:"callConnectionId"`
	ServerCallID         string           `json:"serverCallId"`
	Targets              []identifierJSON `json:"targets"`
	CallConnectionState  string           `json:"callConnectionState"`
	CallbackURI          string           `json:"callbackUri,omitempty"`
	Source               *identifierJSON  `json:"source,omitempty"`
	SourceCallerIDNumber *phoneIDJSON     `json:"sourceCallerIdNumber,omitempty"`
	CorrelationID        string           `json:"correlationId"`
}

func callConnectionOf(p calls.ConnectionProperties) callConnectionJSON {
	out := callConnectionJSON{CallConnectionID: p.CallConnectionID, ServerCallID: p.ServerCallID, CallConnectionState: string(p.State),
		CallbackURI: p.CallbackURI, CorrelationID: p.CorrelationID, Targets: []identifierJSON{}}
	for _, t := range p.Targets {
		out.Targets = append(out.Targets, identifierOf(t))
	}
	if p.Source.ID != "" {
		src := identifierOf(p.Source)
		out.Source = &src
	}
	return out
}

// answerCallJSON is AnswerCallRequest (unknown fields, e.g. the SDK's customCallingContext,
// are ignored).
type answerCallJSON struct {
	IncomingCallContext string `json:"incomingCallContext"`
	CallbackURI         string `json:"callbackUri"`
	OperationContext    string `json:"operationContext"`
}

func (h *callAutomationHandlers) answer(w http.ResponseWriter, r *http.Request) {
	var req answerCallJSON
	if err := DecodeJSON(r, &req, false); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	if err := checkCallbackURI(req.CallbackURI); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	props, err := h.a.Answer(r.Context(), calls.AnswerParams{IncomingCallContext: req.IncomingCallContext,
		CallbackURI: req.CallbackURI, OperationContext: req.OperationContext})
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	WriteJSON(w, http.StatusOK, callConnectionOf(props))
}

// checkCallbackURI requires an absolute http(s) URL; which addresses may receive callbacks is
// the webhook address policy's to decide when they are delivered.
func checkCallbackURI(v string) error {
	if v == "" {
		return problem.Invalid("callbackUri", "callbackUri is required").WithCode("BadRequest")
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return problem.Invalid("callbackUri", "callbackUri must be an absolute http or https URL").WithCode("BadRequest")
	}
	return nil
}

// createCallJSON is CreateCallRequest.
type createCallJSON struct {
	Targets              []identifierJSON `json:"targets"`
	SourceCallerIDNumber *phoneIDJSON     `json:"sourceCallerIdNumber"`
	SourceDisplayName    string           `json:"sourceDisplayName"`
	CallbackURI          string           `json:"callbackUri"`
	OperationContext     string           `json:"operationContext"`
}

func (h *callAutomationHandlers) create(w http.ResponseWriter, r *http.Request) {
	var req createCallJSON
	if err := DecodeJSON(r, &req, false); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	err := checkCallbackURI(req.CallbackURI)
	var target calls.Participant
	var targets []calls.Participant
	switch {
	case err != nil:
	case len(req.Targets) == 0:
		err = problem.Invalid("targets", "targets is required").WithCode("BadRequest")
	case len(req.Targets) > calls.MaxParticipantsLimit:
		// Bounded before each is parsed; the configured calls.maxParticipants is checked by the
		// call engine.
		err = problem.Invalid("targets", "a call takes at most %d targets (%d given)", calls.MaxParticipantsLimit, len(req.Targets)).WithCode("BadRequest")
	default:
		for i, t := range req.Targets {
			var p calls.Participant
			if p, err = t.participant(fmt.Sprintf("targets[%d]", i)); err != nil {
				break
			}
			targets = append(targets, p)
		}
		if err == nil {
			target = targets[0]
		}
	}
	var source string
	if err == nil && req.SourceCallerIDNumber != nil {
		var p calls.Participant
		p, err = phone("sourceCallerIdNumber", req.SourceCallerIDNumber.Value)
		source = p.ID
	}
	var props calls.ConnectionProperties
	if err == nil {
		props, err = h.a.CreateCall(r.Context(), calls.CreateCallParams{Target: target, Targets: targets, SourceCallerID: source,
			SourceDisplayName: req.SourceDisplayName, CallbackURI: req.CallbackURI, OperationContext: req.OperationContext})
	}
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	out := callConnectionOf(props)
	if source != "" {
		out.SourceCallerIDNumber = &phoneIDJSON{Value: source}
	}
	WriteJSON(w, http.StatusCreated, out)
}

type rejectCallJSON struct {
	IncomingCallContext string `json:"incomingCallContext"`
	CallRejectReason    string `json:"callRejectReason"`
}

func (h *callAutomationHandlers) reject(w http.ResponseWriter, r *http.Request) {
	var req rejectCallJSON
	if err := DecodeJSON(r, &req, false); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	if err := h.a.Reject(r.Context(), req.IncomingCallContext, calls.RejectReason(req.CallRejectReason)); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type redirectCallJSON struct {
	IncomingCallContext string          `json:"incomingCallContext"`
	Target              *identifierJSON `json:"target"`
}

func (h *callAutomationHandlers) redirect(w http.ResponseWriter, r *http.Request) {
	var req redirectCallJSON
	if err := DecodeJSON(r, &req, false); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	target, err := req.Target.participant("target")
	if err == nil {
		err = h.a.Redirect(r.Context(), req.IncomingCallContext, target)
	}
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *callAutomationHandlers) get(w http.ResponseWriter, r *http.Request) {
	props, err := h.a.Connection(r.Context(), PathParam(r, "callConnectionId"))
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	WriteJSON(w, http.StatusOK, callConnectionOf(props))
}

func (h *callAutomationHandlers) hangUp(w http.ResponseWriter, r *http.Request) {
	if err := h.a.HangUp(r.Context(), PathParam(r, "callConnectionId")); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// action serves POST /calling/callConnections/{callConnectionId}:{action}.
func (h *callAutomationHandlers) action(w http.ResponseWriter, r *http.Request) {
	id, act, ok := strings.Cut(PathParam(r, "callConnectionAction"), ":")
	var err error
	switch {
	case !ok:
		err = problem.NotFound("path", "no route for %s %s", r.Method, r.URL.Path).WithCode("NotFound")
	case act == "terminate":
		err = h.a.Terminate(r.Context(), id)
	case act == "transferToParticipant":
		if err = h.transfer(w, r, id); err == nil {
			return
		}
	default:
		var handled bool
		if handled, err = h.mediaAction(w, r, id, act); handled {
			break
		}
		err = problem.NotFound("path", "no route for %s %s", r.Method, r.URL.Path).WithCode("NotFound")
	}
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	if act == "terminate" {
		w.WriteHeader(http.StatusNoContent)
	}
}

// repeatWindow is how long a Repeatability-Request-ID's answer is kept for repeats (ACS
// documents a window of at least 5 minutes).
const repeatWindow = 5 * time.Minute

// repeatCache keeps the answers of requests sent with Repeatability-Request-ID (the OASIS
// Repeatable Requests 1.0 headers ACS uses) so that a client retrying after a lost answer gets
// the first answer instead of doing the operation twice (answering a call that is already
// answered would otherwise fail).
type repeatCache struct {
	ttl time.Duration
	max int
	mu  sync.Mutex
	m   map[string]*repeatEntry
}

type repeatEntry struct {
	done    chan struct{}
	at      time.Time
	status  int
	ctype   string
	body    []byte
	success bool
}

func newRepeatCache(ttl time.Duration, max int) *repeatCache {
	return &repeatCache{ttl: ttl, max: max, m: map[string]*repeatEntry{}}
}

func (c *repeatCache) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rid := r.Header.Get("Repeatability-Request-ID")
		first := r.Header.Get("Repeatability-First-Sent")
		if rid == "" {
			if first != "" {
				WriteError(w, r, nil, problem.Invalid("Repeatability-First-Sent", "Repeatability-First-Sent needs Repeatability-Request-ID").WithCode("BadRequest"))
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if _, err := uuid.Parse(rid); err != nil {
			WriteError(w, r, nil, problem.Invalid("Repeatability-Request-ID", "Repeatability-Request-ID must be a UUID").WithCode("BadRequest"))
			return
		}
		if first != "" {
			if _, err := http.ParseTime(first); err != nil {
				WriteError(w, r, nil, problem.Invalid("Repeatability-First-Sent", "Repeatability-First-Sent must be an IMF-fixdate (RFC 7231)").WithCode("BadRequest"))
				return
			}
		}
		key := r.URL.Path + " " + strings.ToLower(rid)
		e, mine := c.claim(key)
		if !mine {
			select {
			case <-e.done:
			case <-r.Context().Done():
				return
			}
			if !e.success {
				// The first attempt failed: this one is a real retry.
				c.forget(key, e)
				e, mine = c.claim(key)
			}
		}
		if !mine {
			w.Header().Set("Repeatability-Result", "accepted")
			if e.ctype != "" {
				w.Header().Set("Content-Type", e.ctype)
			}
			w.WriteHeader(e.status)
			_, _ = w.Write(e.body)
			return
		}
		rec := &recorder{ResponseWriter: w}
		w.Header().Set("Repeatability-Result", "accepted")
		defer func() {
			e.status, e.body, e.ctype = rec.status, rec.buf.Bytes(), w.Header().Get("Content-Type")
			if e.status == 0 {
				e.status = http.StatusOK
			}
			e.success = e.status < 400
			close(e.done)
		}()
		next.ServeHTTP(rec, r)
	})
}

// claim returns the entry of key; mine when the caller is the first and must fill it.
func (c *repeatCache) claim(key string) (*repeatEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if e, ok := c.m[key]; ok && now.Sub(e.at) < c.ttl {
		return e, false
	}
	if len(c.m) >= c.max {
		for k, e := range c.m {
			if now.Sub(e.at) >= c.ttl {
				delete(c.m, k)
			}
		}
	}
	e := &repeatEntry{done: make(chan struct{}), at: now}
	if len(c.m) < c.max {
		c.m[key] = e
	}
	return e, true
}

func (c *repeatCache) forget(key string, e *repeatEntry) {
	c.mu.Lock()
	if c.m[key] == e {
		delete(c.m, key)
	}
	c.mu.Unlock()
}

// recorder passes a response through and keeps a copy.
type recorder struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.buf.Write(b)
	return r.ResponseWriter.Write(b)
}
