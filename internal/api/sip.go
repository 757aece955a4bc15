package api

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/e164"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sip"
)

// SIPRoutingAPIVersions are the SipRouting api-versions telgw accepts.
var SIPRoutingAPIVersions = []string{"2021-05-01-preview", "2023-03-01"}

type sipHandlers struct {
	s   *Server
	svc *sip.Admin
}

// MountSIP serves the ACS SIP routing API (SipRouting 2023-03-01: GET and PATCH /sip) and the
// operator's SIP routes:
//
//	GET    /telgw/sip/trunks                      trunks with health and active calls
//	GET    /telgw/sip/credentials                 customer endpoint credentials
//	POST   /telgw/sip/credentials                 {"username","password","numbers":[…]} → 201
//	DELETE /telgw/sip/credentials/{username}      → 204
//	GET    /telgw/calls[?number&since&skip&top]   CDRs, newest first
func (s *Server) MountSIP(svc *sip.Service) {
	h := &sipHandlers{s: s, svc: svc.Admin()}
	s.authed.Group(func(r chi.Router) {
		r.Use(APIVersions(SIPRoutingAPIVersions...))
		r.Get("/sip", h.get)
		r.Patch("/sip", h.patch)
	})
	s.authed.Get("/telgw/sip/trunks", h.trunks)
	s.authed.Get("/telgw/sip/credentials", h.credentials)
	s.authed.Post("/telgw/sip/credentials", h.credentialCreate)
	s.authed.Delete("/telgw/sip/credentials/{username}", h.credentialDelete)
	s.authed.Get("/telgw/calls", h.calls)
}

// Wire shapes (communicationservicessiprouting.json definitions).
type sipTrunkJSON struct {
	SipSignalingPort int `json:"sipSignalingPort"`
}

type sipRouteJSON struct {
	Name          string   `json:"name"`
	Description   string   `json:"description,omitempty"`
	NumberPattern string   `json:"numberPattern"`
	Trunks        []string `json:"trunks"`
}

type sipConfigurationJSON struct {
	Trunks map[string]sipTrunkJSON `json:"trunks"`
	Routes []sipRouteJSON          `json:"routes"`
}

type sipConfigurationUpdateJSON struct {
	Trunks map[string]*struct {
		SipSignalingPort *int `json:"sipSignalingPort"`
	} `json:"trunks"`
	Routes *[]sipRouteJSON `json:"routes"`
}

func sipConfiguration(r sip.Routing) sipConfigurationJSON {
	out := sipConfigurationJSON{Trunks: map[string]sipTrunkJSON{}, Routes: []sipRouteJSON{}}
	for _, t := range r.Trunks {
		out.Trunks[t.FQDN] = sipTrunkJSON{SipSignalingPort: t.Port}
	}
	for _, rt := range r.Routes {
		trunks := rt.Trunks
		if trunks == nil {
			trunks = []string{}
		}
		out.Routes = append(out.Routes, sipRouteJSON{Name: rt.Name, Description: rt.Description, NumberPattern: rt.NumberPattern, Trunks: trunks})
	}
	return out
}

func (h *sipHandlers) get(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, sipConfiguration(h.svc.Routing()))
}

func (h *sipHandlers) patch(w http.ResponseWriter, r *http.Request) {
	var req sipConfigurationUpdateJSON
	if err := DecodeJSON(r, &req, false); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	p := sip.RoutingPatch{Trunks: map[string]*int{}}
	for fqdn, t := range req.Trunks {
		if t == nil {
			p.Trunks[fqdn] = nil
			continue
		}
		if t.SipSignalingPort == nil {
			WriteError(w, r, h.s.log, problem.Invalid("trunks."+fqdn+".sipSignalingPort", "is required").WithCode("InvalidTrunk"))
			return
		}
		p.Trunks[fqdn] = t.SipSignalingPort
	}
	if req.Routes != nil {
		routes := make([]sip.OutboundRoute, 0, len(*req.Routes))
		for _, rt := range *req.Routes {
			routes = append(routes, sip.OutboundRoute{Name: rt.Name, Description: rt.Description, NumberPattern: rt.NumberPattern, Trunks: rt.Trunks})
		}
		p.Routes = &routes
	}
	out, err := h.svc.PatchRouting(r.Context(), p)
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	WriteJSON(w, http.StatusOK, sipConfiguration(out))
}

type sipTrunkStatusJSON struct {
	Name       string   `json:"name"`
	Address    string   `json:"address"`
	Transport  string   `json:"transport"`
	Allow      []string `json:"allow"`
	MaxCalls   int      `json:"maxCalls,omitempty"`
	CPS        float64  `json:"cps,omitempty"`
	Up         bool     `json:"up"`
	Active     int      `json:"activeCalls"`
	OutboundAu bool     `json:"outboundAuth"`
	InboundAu  bool     `json:"inboundAuth"`
}

func (h *sipHandlers) trunks(w http.ResponseWriter, r *http.Request) {
	out := []sipTrunkStatusJSON{}
	for _, t := range h.svc.Trunks() {
		j := sipTrunkStatusJSON{Name: t.Name, Address: t.Address, Transport: t.Transport, Allow: []string{}, MaxCalls: t.MaxCalls, CPS: t.CPS,
			Up: t.Up, Active: t.Active, OutboundAu: t.Password != "", InboundAu: t.InboundPassword != ""}
		for _, p := range t.Allow {
			j.Allow = append(j.Allow, p.String())
		}
		out = append(out, j)
	}
	WriteJSON(w, http.StatusOK, map[string]any{"value": out})
}

type sipCredentialJSON struct {
	Username  string    `json:"username"`
	Password  string    `json:"password,omitempty"`
	Numbers   []string  `json:"numbers"`
	Realm     string    `json:"realm,omitempty"`
	CreatedAt time.Time `json:"createdAt,omitzero"`
}

func (h *sipHandlers) credentials(w http.ResponseWriter, r *http.Request) {
	list, err := h.svc.ListCredentials(r.Context())
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	out := []sipCredentialJSON{}
	for _, c := range list {
		out = append(out, sipCredentialJSON{Username: c.Username, Numbers: nonNil(c.Numbers), Realm: h.svc.Realm(), CreatedAt: c.CreatedAt})
	}
	WriteJSON(w, http.StatusOK, map[string]any{"value": out})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (h *sipHandlers) credentialCreate(w http.ResponseWriter, r *http.Request) {
	var req sipCredentialJSON
	if err := DecodeJSON(r, &req, false); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	c, err := h.svc.CreateCredential(r.Context(), req.Username, req.Password, req.Numbers)
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	WriteJSON(w, http.StatusCreated, sipCredentialJSON{Username: c.Username, Numbers: nonNil(c.Numbers), Realm: h.svc.Realm(), CreatedAt: c.CreatedAt})
}

func (h *sipHandlers) credentialDelete(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.DeleteCredential(r.Context(), PathParam(r, "username")); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type cdrJSON struct {
	CallID      string     `json:"callId"`
	Direction   string     `json:"direction"`
	From        string     `json:"from"`
	To          string     `json:"to"`
	Trunk       string     `json:"trunk,omitempty"`
	Start       time.Time  `json:"startTime"`
	Ringing     *time.Time `json:"ringingTime,omitempty"`
	Answer      *time.Time `json:"answerTime,omitempty"`
	End         time.Time  `json:"endTime"`
	DurationMS  int64      `json:"durationMs"`
	Disposition string     `json:"disposition"`
	SIPCode     int        `json:"sipCode"`
	Q850        int        `json:"q850Cause,omitempty"`
	EndedBy     string     `json:"endedBy,omitempty"`
	// Legs are the call's legs: the caller's, the callee's (an app's: kind bot, participant
	// the host of its callback URL), then any a transfer replaced.
	Legs []cdrLegJSON `json:"legs"`
	// Verstat and Attest are the STIR/SHAKEN outcomes (inbound verification, outbound
	// attestation).
	Verstat string `json:"verstat,omitempty"`
	Attest  string `json:"attestation,omitempty"`
}

type cdrLegJSON struct {
	ID              string     `json:"id"`
	Kind            string     `json:"kind"`
	ParticipantKind string     `json:"participantKind"`
	Participant     string     `json:"participant"`
	Trunk           string     `json:"trunk,omitempty"`
	Transferred     bool       `json:"transferred,omitempty"`
	Left            *time.Time `json:"leftTime,omitempty"`
}

func legsJSON(legs []calls.Leg) []cdrLegJSON {
	out := make([]cdrLegJSON, 0, len(legs))
	for _, l := range legs {
		out = append(out, cdrLegJSON{ID: l.ID, Kind: string(l.Kind), ParticipantKind: string(l.Participant.Kind), Participant: l.Participant.ID,
			Trunk: l.Trunk, Transferred: l.Transferred, Left: optTime(l.Left)})
	}
	return out
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (h *sipHandlers) calls(w http.ResponseWriter, r *http.Request) {
	p, err := PageParams(r, "top", 100, 1000)
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	lp := sip.CDRListParams{Skip: p.Skip, Top: p.Top + 1}
	if n := r.URL.Query().Get("number"); n != "" {
		if lp.Number, err = e164.Normalize(n); err != nil {
			WriteError(w, r, h.s.log, problem.Invalid("number", "%q is not a telephone number", n))
			return
		}
	}
	if v := r.URL.Query().Get("since"); v != "" {
		if lp.Since, err = time.Parse(time.RFC3339, v); err != nil {
			WriteError(w, r, h.s.log, problem.Invalid("since", "%q is not an RFC 3339 time", v))
			return
		}
	}
	list, err := h.svc.Calls(r.Context(), lp)
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	more := len(list) > p.Top
	if more {
		list = list[:p.Top]
	}
	out := make([]cdrJSON, 0, len(list))
	for _, c := range list {
		out = append(out, cdrJSON{CallID: c.CallID, Direction: string(c.Direction), From: c.From, To: c.To, Trunk: c.Trunk, Start: c.Start,
			Ringing: optTime(c.Ringing), Answer: optTime(c.Answer), End: c.End, DurationMS: c.Duration().Milliseconds(),
			Disposition: c.Disposition, SIPCode: c.SIPCode, Q850: c.Q850, EndedBy: c.EndedBy, Legs: legsJSON(c.Legs),
			Verstat: c.Verstat, Attest: c.Attest})
	}
	body := map[string]any{"value": out}
	if next := NextLink(r, p, more); next != "" {
		body["nextLink"] = next
	}
	WriteJSON(w, http.StatusOK, body)
}
