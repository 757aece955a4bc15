package api

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/telgw/telgw/internal/identity"
	"github.com/telgw/telgw/internal/push"
)

type pushHandlers struct {
	s   *Server
	svc *push.Service
}

// MountPush serves device-token registration for incoming-call push notifications. End users
// call it with their own user access token (scope voip):
//
//	POST   /telgw/push/devices                    {"platform":"fcm|apns","token":"…"} → 201
//	GET    /telgw/push/devices                    → {"value":[…]}
//	DELETE /telgw/push/devices/{platform}/{token} → 204
func (s *Server) MountPush(ids *identity.Service, svc *push.Service) {
	h := &pushHandlers{s: s, svc: svc}
	s.router.Group(func(r chi.Router) {
		r.Use(func(next http.Handler) http.Handler {
			return http.MaxBytesHandler(next, s.cfg.MaxBodyBytes)
		}, UserAuth(ids, identity.ScopeVoIP, identity.ScopeVoIPJoin))
		r.Post("/telgw/push/devices", h.register)
		r.Get("/telgw/push/devices", h.list)
		r.Delete("/telgw/push/devices/{platform}/{token}", h.unregister)
	})
}

type deviceJSON struct {
	Platform  string    `json:"platform"`
	Token     string    `json:"token"`
	CreatedAt time.Time `json:"createdAt,omitzero"`
}

func (h *pushHandlers) register(w http.ResponseWriter, r *http.Request) {
	c, _ := UserClaims(r.Context())
	var req deviceJSON
	if err := DecodeJSON(r, &req, false); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	p, err := push.ParsePlatform(req.Platform)
	if err == nil {
		err = h.svc.Register(r.Context(), c.Identity, p, req.Token)
	}
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	WriteJSON(w, http.StatusCreated, deviceJSON{Platform: string(p), Token: req.Token})
}

func (h *pushHandlers) list(w http.ResponseWriter, r *http.Request) {
	c, _ := UserClaims(r.Context())
	devs, err := h.svc.Devices(r.Context(), c.Identity)
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	out := struct {
		Value []deviceJSON `json:"value"`
	}{Value: []deviceJSON{}}
	for _, d := range devs {
		out.Value = append(out.Value, deviceJSON{Platform: string(d.Platform), Token: d.Token, CreatedAt: d.CreatedAt})
	}
	WriteJSON(w, http.StatusOK, out)
}

func (h *pushHandlers) unregister(w http.ResponseWriter, r *http.Request) {
	c, _ := UserClaims(r.Context())
	p, err := push.ParsePlatform(PathParam(r, "platform"))
	if err == nil {
		err = h.svc.Unregister(r.Context(), c.Identity, p, PathParam(r, "token"))
	}
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
