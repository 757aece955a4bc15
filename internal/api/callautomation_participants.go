package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/problem"
)

// mountParticipants serves the participants of call connections and transfers
// (communicationservicescallautomation 2025-05-15, MidConnections):
//
//	GET  /calling/callConnections/{callConnectionId}/participants                        GetParticipants → 200 {value, nextLink}
//	GET  /calling/callConnections/{callConnectionId}/participants/{participantRawId}     GetParticipant → 200 CallParticipant
//	POST /calling/callConnections/{callConnectionId}/participants:add                    AddParticipant → 202 {participant, invitationId, operationContext}
//	POST /calling/callConnections/{callConnectionId}/participants:remove                 RemoveParticipant → 202 {operationContext}
//	POST /calling/callConnections/{callConnectionId}/participants:mute                   Mute → 200 {operationContext}
//	POST /calling/callConnections/{callConnectionId}/participants:cancelAddParticipant   CancelAddParticipant → 202 {invitationId, operationContext}
//	POST /calling/callConnections/{callConnectionId}:transferToParticipant               TransferToParticipant → 202 {operationContext} (transfer, through action)
//
// The outcome of add, remove, cancel and transfer reaches the app's callbackUri (or the
// request's operationCallbackUri) as callbacks.
func (h *callAutomationHandlers) mountParticipants(r chi.Router) {
	r.Get("/calling/callConnections/{callConnectionId}/participants", h.countAs("getParticipants", h.listParticipants))
	r.Get("/calling/callConnections/{callConnectionId}/participants/{participantRawId}", h.countAs("getParticipant", h.getParticipant))
	// chi parameters end at '/', so "participants:add" arrives whole: split in the handler.
	r.With(h.repeat.middleware).Post("/calling/callConnections/{callConnectionId}/{participantsAction}", h.countParticipantsAction(h.participantsAction))
}

func (h *callAutomationHandlers) countAs(op string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		next(sw, r)
		h.ops.WithLabelValues(op, resultOf(sw.status)).Inc()
	}
}

// participantsOps names the participants actions in telgw_callautomation_operations_total.
var participantsOps = map[string]string{"add": "addParticipant", "remove": "removeParticipant", "mute": "mute", "cancelAddParticipant": "cancelAddParticipant"}

func (h *callAutomationHandlers) countParticipantsAction(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		op := "other"
		if res, act, ok := strings.Cut(PathParam(r, "participantsAction"), ":"); ok && res == "participants" && participantsOps[act] != "" {
			op = participantsOps[act]
		}
		h.countAs(op, next)(w, r)
	}
}

// callParticipantJSON is CallParticipant.
type callParticipantJSON struct {
	Identifier identifierJSON `json:"identifier"`
	IsMuted    bool           `json:"isMuted"`
	IsOnHold   bool           `json:"isOnHold"`
}

func callParticipantOf(p calls.CallParticipant) callParticipantJSON {
	return callParticipantJSON{Identifier: identifierOf(p.Participant), IsMuted: p.Muted, IsOnHold: p.OnHold}
}

func (h *callAutomationHandlers) listParticipants(w http.ResponseWriter, r *http.Request) {
	ps, err := h.a.Participants(r.Context(), PathParam(r, "callConnectionId"))
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	// A call holds a handful of people: one page, no nextLink.
	out := struct {
		Value []callParticipantJSON `json:"value"`
	}{Value: []callParticipantJSON{}}
	for _, p := range ps {
		out.Value = append(out.Value, callParticipantOf(p))
	}
	WriteJSON(w, http.StatusOK, out)
}

func (h *callAutomationHandlers) getParticipant(w http.ResponseWriter, r *http.Request) {
	raw := PathParam(r, "participantRawId")
	if n, ok := strings.CutPrefix(raw, "4:"); ok {
		// A phone number's rawId as the app may write it (national digits, spaces): normalized.
		if p, err := phone("participantRawId", n); err == nil {
			raw = "4:" + p.ID
		}
	}
	p, err := h.a.Participant(r.Context(), PathParam(r, "callConnectionId"), raw)
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	WriteJSON(w, http.StatusOK, callParticipantOf(p))
}

// midCallOpJSON are the fields every participant operation takes.
type midCallOpJSON struct {
	OperationContext     string `json:"operationContext"`
	OperationCallbackURI string `json:"operationCallbackUri"`
}

func (o midCallOpJSON) params() (calls.OperationParams, error) {
	if o.OperationCallbackURI != "" {
		if err := checkCallbackURI(o.OperationCallbackURI); err != nil {
			return calls.OperationParams{}, problem.Invalid("operationCallbackUri", "operationCallbackUri must be an absolute http or https URL").WithCode("BadRequest")
		}
	}
	return calls.OperationParams{OperationContext: o.OperationContext, OperationCallbackURI: o.OperationCallbackURI}, nil
}

// addParticipantJSON is AddParticipantRequest (customCallingContext is ignored for now).
type addParticipantJSON struct {
	ParticipantToAdd           *identifierJSON `json:"participantToAdd"`
	SourceCallerIDNumber       *phoneIDJSON    `json:"sourceCallerIdNumber"`
	SourceDisplayName          string          `json:"sourceDisplayName"`
	InvitationTimeoutInSeconds *int            `json:"invitationTimeoutInSeconds"`
	midCallOpJSON
}

type removeParticipantJSON struct {
	ParticipantToRemove *identifierJSON `json:"participantToRemove"`
	midCallOpJSON
}

type muteParticipantsJSON struct {
	TargetParticipants []identifierJSON `json:"targetParticipants"`
	OperationContext   string           `json:"operationContext"`
}

type cancelAddParticipantJSON struct {
	InvitationID string `json:"invitationId"`
	midCallOpJSON
}

// participantsAction serves POST /calling/callConnections/{id}/participants:{action}.
func (h *callAutomationHandlers) participantsAction(w http.ResponseWriter, r *http.Request) {
	id := PathParam(r, "callConnectionId")
	res, act, ok := strings.Cut(PathParam(r, "participantsAction"), ":")
	var err error
	switch {
	case !ok || res != "participants":
		err = problem.NotFound("path", "no route for %s %s", r.Method, r.URL.Path).WithCode("NotFound")
	case act == "add":
		err = h.addParticipant(w, r, id)
	case act == "remove":
		err = h.removeParticipant(w, r, id)
	case act == "mute":
		err = h.muteParticipants(w, r, id)
	case act == "cancelAddParticipant":
		err = h.cancelAddParticipant(w, r, id)
	default:
		err = problem.NotFound("path", "no route for %s %s", r.Method, r.URL.Path).WithCode("NotFound")
	}
	if err != nil {
		WriteError(w, r, h.s.log, err)
	}
}

func (h *callAutomationHandlers) addParticipant(w http.ResponseWriter, r *http.Request, id string) error {
	var req addParticipantJSON
	if err := DecodeJSON(r, &req, false); err != nil {
		return err
	}
	op, err := req.params()
	if err != nil {
		return err
	}
	target, err := req.ParticipantToAdd.participant("participantToAdd")
	if err != nil {
		return err
	}
	p := calls.AddParticipantParams{Target: target, SourceDisplayName: req.SourceDisplayName, OperationParams: op}
	if req.SourceCallerIDNumber != nil {
		src, err := phone("sourceCallerIdNumber", req.SourceCallerIDNumber.Value)
		if err != nil {
			return err
		}
		p.SourceCallerID = src.ID
	}
	if t := req.InvitationTimeoutInSeconds; t != nil {
		if *t < 0 || *t > 180 {
			return problem.Invalid("invitationTimeoutInSeconds", "invitationTimeoutInSeconds must be 0–180").WithCode("BadRequest")
		}
		p.InvitationTimeout = time.Duration(*t) * time.Second
	}
	inv, err := h.a.AddParticipant(r.Context(), id, p)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusAccepted, struct {
		Participant      callParticipantJSON `json:"participant"`
		OperationContext string              `json:"operationContext,omitempty"`
		InvitationID     string              `json:"invitationId"`
	}{callParticipantOf(calls.CallParticipant{Participant: target}), op.OperationContext, inv})
	return nil
}

type operationContextJSON struct {
	OperationContext string `json:"operationContext,omitempty"`
}

func (h *callAutomationHandlers) removeParticipant(w http.ResponseWriter, r *http.Request, id string) error {
	var req removeParticipantJSON
	if err := DecodeJSON(r, &req, false); err != nil {
		return err
	}
	op, err := req.params()
	if err != nil {
		return err
	}
	p, err := req.ParticipantToRemove.participant("participantToRemove")
	if err != nil {
		return err
	}
	if err := h.a.RemoveParticipant(r.Context(), id, p, op); err != nil {
		return err
	}
	WriteJSON(w, http.StatusAccepted, operationContextJSON{op.OperationContext})
	return nil
}

func (h *callAutomationHandlers) muteParticipants(w http.ResponseWriter, r *http.Request, id string) error {
	var req muteParticipantsJSON
	if err := DecodeJSON(r, &req, false); err != nil {
		return err
	}
	if len(req.TargetParticipants) == 0 {
		return problem.Invalid("targetParticipants", "targetParticipants is required").WithCode("BadRequest")
	}
	var ps []calls.Participant
	for i := range req.TargetParticipants {
		p, err := req.TargetParticipants[i].participant("targetParticipants")
		if err != nil {
			return err
		}
		ps = append(ps, p)
	}
	if err := h.a.Mute(r.Context(), id, ps); err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, operationContextJSON{req.OperationContext})
	return nil
}

func (h *callAutomationHandlers) cancelAddParticipant(w http.ResponseWriter, r *http.Request, id string) error {
	var req cancelAddParticipantJSON
	if err := DecodeJSON(r, &req, false); err != nil {
		return err
	}
	op, err := req.params()
	if err != nil {
		return err
	}
	if err := h.a.CancelAddParticipant(r.Context(), id, req.InvitationID, op); err != nil {
		return err
	}
	WriteJSON(w, http.StatusAccepted, struct {
		InvitationID     string `json:"invitationId"`
		OperationContext string `json:"operationContext,omitempty"`
	}{req.InvitationID, op.OperationContext})
	return nil
}

// transferJSON is TransferToParticipantRequest (customCallingContext is ignored for now).
type transferJSON struct {
	TargetParticipant    *identifierJSON `json:"targetParticipant"`
	Transferee           *identifierJSON `json:"transferee"`
	SourceCallerIDNumber *phoneIDJSON    `json:"sourceCallerIdNumber"`
	midCallOpJSON
}

// transfer serves POST /calling/callConnections/{id}:transferToParticipant.
func (h *callAutomationHandlers) transfer(w http.ResponseWriter, r *http.Request, id string) error {
	var req transferJSON
	if err := DecodeJSON(r, &req, false); err != nil {
		return err
	}
	op, err := req.params()
	if err != nil {
		return err
	}
	target, err := req.TargetParticipant.participant("targetParticipant")
	if err != nil {
		return err
	}
	p := calls.TransferParams{Target: target, OperationParams: op}
	if req.Transferee != nil {
		te, err := req.Transferee.participant("transferee")
		if err != nil {
			return err
		}
		p.Transferee = &te
	}
	if req.SourceCallerIDNumber != nil {
		src, err := phone("sourceCallerIdNumber", req.SourceCallerIDNumber.Value)
		if err != nil {
			return err
		}
		p.SourceCallerID = src.ID
	}
	if err := h.a.TransferToParticipant(r.Context(), id, p); err != nil {
		return err
	}
	WriteJSON(w, http.StatusAccepted, operationContextJSON{op.OperationContext})
	return nil
}
