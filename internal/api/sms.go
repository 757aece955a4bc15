package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/telgw/telgw/internal/e164"
	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sms"
)

// SMSAPIVersions are the SMS api-versions: 2021-03-07 (npm @azure/communication-sms 1.1.0)
// and 2026-01-23 (opt-outs, delivery reports).
var SMSAPIVersions = []string{"2021-03-07", "2026-01-23"}

type smsHandlers struct {
	s     *Server
	svc   *sms.Service
	hooks *events.Dispatcher
}

// MountSMS serves the ACS SMS API and telgw's operator routes for the message log and
// webhook subscriptions:
//
//	POST   /sms                                  ACS send (both api-versions) → 202
//	POST   /sms/optouts:add|remove|check         ACS opt-outs (2026-01-23)
//	GET    /deliveryReports/{outgoingMessageId}  ACS delivery report (2026-01-23)
//	GET    /telgw/sms/messages[?from&to&status&before&limit]   message log, newest first
//	GET    /telgw/sms/messages/{id}
//	GET    /telgw/webhooks                       subscriptions
//	POST   /telgw/webhooks                       {"url","secret","eventTypes","phoneNumbers"} → 201
//	DELETE /telgw/webhooks/{id}                  → 204
//	POST   /telgw/webhooks/{id}:enable           re-enable after a 410 → 204
func (s *Server) MountSMS(svc *sms.Service, hooks *events.Dispatcher) {
	h := &smsHandlers{s: s, svc: svc, hooks: hooks}
	s.authed.Group(func(r chi.Router) {
		r.Use(APIVersions(SMSAPIVersions...))
		r.Post("/sms", h.send)
	})
	s.authed.Group(func(r chi.Router) {
		r.Use(APIVersions("2026-01-23"))
		r.Post("/sms/optouts:add", h.optOut(true))
		r.Post("/sms/optouts:remove", h.optOut(false))
		r.Post("/sms/optouts:check", h.optOutCheck)
		r.Get("/deliveryReports/{id}", h.report)
	})
	s.authed.Get("/telgw/sms/messages", h.list)
	s.authed.Get("/telgw/sms/messages/{id}", h.get)
	s.authed.Get("/telgw/webhooks", h.hooksList)
	s.authed.Post("/telgw/webhooks", h.hooksCreate)
	s.authed.Delete("/telgw/webhooks/{id}", h.hooksDelete)
	s.authed.Post("/telgw/webhooks/{id}:enable", h.hooksEnable)
}

type smsRecipientJSON struct {
	To                     string `json:"to"`
	RepeatabilityRequestID string `json:"repeatabilityRequestId"`
	RepeatabilityFirstSent string `json:"repeatabilityFirstSent"`
}

type smsSendRequest struct {
	From          *string            `json:"from"`
	SMSRecipients []smsRecipientJSON `json:"smsRecipients"`
	Message       *string            `json:"message"`
	Options       *smsSendOptions    `json:"smsSendOptions"`
}

type smsSendOptions struct {
	EnableDeliveryReport           bool   `json:"enableDeliveryReport"`
	Tag                            string `json:"tag"`
	ValidityPeriodSeconds          *int   `json:"validityPeriodSeconds"`
	DeliveryReportTimeoutInSeconds *int   `json:"deliveryReportTimeoutInSeconds"`
}

type smsSendResponseItem struct {
	To                  string `json:"to"`
	MessageID           string `json:"messageId,omitempty"`
	HTTPStatusCode      int    `json:"httpStatusCode"`
	RepeatabilityResult string `json:"repeatabilityResult,omitempty"`
	Successful          bool   `json:"successful"`
	ErrorMessage        string `json:"errorMessage,omitempty"`
}

type valueList[T any] struct {
	Value []T `json:"value"`
}

func (h *smsHandlers) send(w http.ResponseWriter, r *http.Request) {
	var req smsSendRequest
	b, err := requestBody(r)
	if err == nil {
		err = decodeSendRequest(b, &req)
	}
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	switch {
	case req.From == nil:
		WriteError(w, r, h.s.log, problem.Invalid("from", "from is required"))
		return
	case req.Message == nil:
		WriteError(w, r, h.s.log, problem.Invalid("message", "message is required"))
		return
	}
	sr := sms.SendRequest{From: *req.From, Message: *req.Message, Recipients: make([]sms.Recipient, 0, len(req.SMSRecipients))}
	for _, rc := range req.SMSRecipients {
		sr.Recipients = append(sr.Recipients, sms.Recipient{To: rc.To, RepeatabilityRequestID: rc.RepeatabilityRequestID,
			RepeatabilityFirstSent: rc.RepeatabilityFirstSent})
	}
	if o := req.Options; o != nil {
		sr.DeliveryReport, sr.Tag = o.EnableDeliveryReport, o.Tag
		if o.ValidityPeriodSeconds != nil {
			sr.Validity = time.Duration(*o.ValidityPeriodSeconds) * time.Second
		}
		if o.DeliveryReportTimeoutInSeconds != nil {
			if v := *o.DeliveryReportTimeoutInSeconds; v < 60 || v > 43200 {
				WriteError(w, r, h.s.log, problem.Invalid("smsSendOptions.deliveryReportTimeoutInSeconds", "must be between 60 and 43200"))
				return
			}
			sr.Validity = time.Duration(*o.DeliveryReportTimeoutInSeconds) * time.Second
		}
	}
	res, err := h.svc.Send(r.Context(), sr)
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	out := make([]smsSendResponseItem, len(res))
	for i, x := range res {
		out[i] = sendResponseItem(x)
	}
	writeSendResponse(w, out)
}

// sendResponseItem is the one place a recipient's result becomes its ACS httpStatusCode: 202
// when the message was accepted (a repeat of an accepted request included), else the status
// of its error's kind (Status: 400 for an invalid number or repeatability fields), with the
// error's message.
func sendResponseItem(x sms.SendResult) smsSendResponseItem {
	it := smsSendResponseItem{To: x.To, MessageID: x.MessageID, RepeatabilityResult: x.RepeatabilityResult,
		Successful: x.Err == nil, HTTPStatusCode: http.StatusAccepted}
	if x.Err != nil {
		it.HTTPStatusCode, it.ErrorMessage = Status(x.Err), Detail(x.Err).Message
	}
	return it
}

type optOutRequest struct {
	From       string `json:"from"`
	Recipients []struct {
		To string `json:"to"`
	} `json:"recipients"`
}

type optOutItem struct {
	To             string `json:"to"`
	HTTPStatusCode int    `json:"httpStatusCode"`
	IsOptedOut     *bool  `json:"isOptedOut,omitempty"`
	ErrorMessage   string `json:"errorMessage,omitempty"`
}

func (req optOutRequest) tos() []string {
	out := make([]string, len(req.Recipients))
	for i, rc := range req.Recipients {
		out[i] = rc.To
	}
	return out
}

func (h *smsHandlers) optOut(add bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req optOutRequest
		if err := DecodeJSON(r, &req, false); err != nil {
			WriteError(w, r, h.s.log, err)
			return
		}
		errs, err := h.svc.OptOut(r.Context(), req.From, req.tos(), add)
		if err != nil {
			WriteError(w, r, h.s.log, err)
			return
		}
		out := valueList[optOutItem]{}
		for _, to := range req.tos() {
			it := optOutItem{To: to, HTTPStatusCode: http.StatusOK}
			if e := errs[to]; e != nil {
				it.HTTPStatusCode, it.ErrorMessage = Status(e), e.Error()
			}
			out.Value = append(out.Value, it)
		}
		WriteJSON(w, http.StatusOK, out)
	}
}

func (h *smsHandlers) optOutCheck(w http.ResponseWriter, r *http.Request) {
	var req optOutRequest
	if err := DecodeJSON(r, &req, false); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	res, errs, err := h.svc.OptOutCheck(r.Context(), req.From, req.tos())
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	out := valueList[optOutItem]{}
	for _, to := range req.tos() {
		it := optOutItem{To: to, HTTPStatusCode: http.StatusOK}
		if e := errs[to]; e != nil {
			it.HTTPStatusCode, it.ErrorMessage = Status(e), e.Error()
		} else {
			n, _ := e164.Clean(to)
			v := res[n]
			it.IsOptedOut = &v
		}
		out.Value = append(out.Value, it)
	}
	WriteJSON(w, http.StatusOK, out)
}

type deliveryAttemptJSON struct {
	Timestamp         time.Time `json:"timestamp"`
	SegmentsSucceeded int       `json:"segmentsSucceeded"`
	SegmentsFailed    int       `json:"segmentsFailed"`
}

type deliveryReportJSON struct {
	DeliveryStatus        string                `json:"deliveryStatus"`
	DeliveryStatusDetails string                `json:"deliveryStatusDetails,omitempty"`
	DeliveryAttempts      []deliveryAttemptJSON `json:"deliveryAttempts,omitempty"`
	ReceivedTimestamp     *time.Time            `json:"receivedTimestamp,omitempty"`
	Tag                   string                `json:"tag,omitempty"`
	MessageID             string                `json:"messageId"`
	From                  string                `json:"from"`
	To                    string                `json:"to"`
}

func (h *smsHandlers) report(w http.ResponseWriter, r *http.Request) {
	id := PathParam(r, "id")
	m, err := h.svc.Message(r.Context(), id)
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	if !m.Status.Final() {
		WriteError(w, r, h.s.log, problem.NotFound("outgoingMessageId", "no delivery report for message %s yet (status %s)", id, m.Status))
		return
	}
	status := "Failed"
	if m.Status == sms.StatusDelivered {
		status = "Delivered"
	}
	at := m.DoneAt
	WriteJSON(w, http.StatusOK, deliveryReportJSON{DeliveryStatus: status, DeliveryStatusDetails: m.StatusDetails,
		DeliveryAttempts:  []deliveryAttemptJSON{{Timestamp: at, SegmentsSucceeded: m.SegmentsSucceeded, SegmentsFailed: m.SegmentsFailed}},
		ReceivedTimestamp: &at, Tag: m.Tag, MessageID: m.ID, From: m.From, To: m.To})
}

type messageJSON struct {
	ID                string     `json:"id"`
	From              string     `json:"from"`
	To                string     `json:"to"`
	Message           string     `json:"message"`
	Tag               string     `json:"tag,omitempty"`
	Carrier           string     `json:"carrier"`
	Status            string     `json:"status"`
	StatusDetails     string     `json:"statusDetails,omitempty"`
	DeliveryReport    bool       `json:"enableDeliveryReport"`
	Segments          int        `json:"segments"`
	SegmentsSucceeded int        `json:"segmentsSucceeded"`
	SegmentsFailed    int        `json:"segmentsFailed"`
	Attempts          int        `json:"attempts"`
	CreatedAt         time.Time  `json:"createdAt"`
	SentAt            *time.Time `json:"sentAt,omitempty"`
	DoneAt            *time.Time `json:"doneAt,omitempty"`
}

func toMessageJSON(m sms.Message) messageJSON {
	j := messageJSON{ID: m.ID, From: m.From, To: m.To, Message: m.Text, Tag: m.Tag, Carrier: m.Carrier, Status: string(m.Status),
		StatusDetails: m.StatusDetails, DeliveryReport: m.DeliveryReport, Segments: m.Segments, SegmentsSucceeded: m.SegmentsSucceeded,
		SegmentsFailed: m.SegmentsFailed, Attempts: m.Attempts, CreatedAt: m.CreatedAt}
	if !m.SentAt.IsZero() {
		j.SentAt = &m.SentAt
	}
	if !m.DoneAt.IsZero() {
		j.DoneAt = &m.DoneAt
	}
	return j
}

func (h *smsHandlers) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := sms.MessageFilter{From: q.Get("from"), To: q.Get("to"), Status: sms.Status(q.Get("status"))}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			WriteError(w, r, h.s.log, problem.Invalid("limit", "must be a positive integer"))
			return
		}
		f.Limit = n
	}
	if v := q.Get("before"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			WriteError(w, r, h.s.log, problem.Invalid("before", "must be an RFC 3339 time"))
			return
		}
		f.Before = t
	}
	ms, err := h.svc.Messages(r.Context(), f)
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	out := valueList[messageJSON]{Value: []messageJSON{}}
	for _, m := range ms {
		out.Value = append(out.Value, toMessageJSON(m))
	}
	WriteJSON(w, http.StatusOK, out)
}

func (h *smsHandlers) get(w http.ResponseWriter, r *http.Request) {
	m, err := h.svc.Message(r.Context(), PathParam(r, "id"))
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	WriteJSON(w, http.StatusOK, toMessageJSON(m))
}

func (h *smsHandlers) hooksList(w http.ResponseWriter, r *http.Request) {
	subs, err := h.hooks.List(r.Context())
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	if subs == nil {
		subs = []events.Subscription{}
	}
	WriteJSON(w, http.StatusOK, valueList[events.Subscription]{Value: subs})
}

type webhookRequest struct {
	URL          string   `json:"url"`
	Secret       string   `json:"secret"`
	EventTypes   []string `json:"eventTypes"`
	PhoneNumbers []string `json:"phoneNumbers"`
	// Event Grid's batching settings (events.Subscription).
	MaxEventsPerBatch             int `json:"maxEventsPerBatch"`
	PreferredBatchSizeInKilobytes int `json:"preferredBatchSizeInKilobytes"`
}

func (h *smsHandlers) hooksCreate(w http.ResponseWriter, r *http.Request) {
	var req webhookRequest
	if err := DecodeJSON(r, &req, false); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	sub, err := h.hooks.Create(r.Context(), events.Subscription{URL: req.URL, Secret: req.Secret, EventTypes: req.EventTypes, PhoneNumbers: req.PhoneNumbers,
		MaxEventsPerBatch: req.MaxEventsPerBatch, PreferredBatchSizeInKilobytes: req.PreferredBatchSizeInKilobytes})
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	WriteJSON(w, http.StatusCreated, sub)
}

func (h *smsHandlers) hooksDelete(w http.ResponseWriter, r *http.Request) {
	if err := h.hooks.Delete(r.Context(), PathParam(r, "id")); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *smsHandlers) hooksEnable(w http.ResponseWriter, r *http.Request) {
	if err := h.hooks.Enable(r.Context(), PathParam(r, "id")); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// MountSMSCallbacks serves HTTP carriers' delivery report and inbound callbacks at
// /telgw/carriers/{name}/dlr and /telgw/carriers/{name}/inbound. Carriers cannot sign ACS
// HMAC requests; each handler checks its carrier's callback token instead.
func (s *Server) MountSMSCallbacks(carriers map[string]http.Handler) {
	if len(carriers) == 0 {
		return
	}
	h := func(w http.ResponseWriter, r *http.Request) {
		c, ok := carriers[chi.URLParam(r, "name")]
		if !ok {
			WriteError(w, r, s.log, problem.NotFound("name", "no HTTP carrier %q", chi.URLParam(r, "name")))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		c.ServeHTTP(w, r)
	}
	for _, p := range []string{"/telgw/carriers/{name}/dlr", "/telgw/carriers/{name}/inbound"} {
		s.router.Get(p, h)
		s.router.Post(p, h)
	}
}
