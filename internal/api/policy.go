package api

import (
	"net/http"
	"sync"

	"github.com/telgw/telgw/internal/policy"
	"github.com/telgw/telgw/internal/problem"
)

type policyHandlers struct {
	s   *Server
	eng *policy.Engine
	mu  sync.Mutex // one read-modify-write of a rule at a time on this node
}

// MountPolicy serves the operator's fraud policy (HMAC-authenticated like every /telgw route):
//
//	GET    /telgw/policy                     the policy (allow, block, defaults, per-subject rules)
//	PUT    /telgw/policy                     replace it on every node → 200 with the policy (no
//	                                         "block": the shipped list; "block": [] blocks nothing)
//	PUT    /telgw/policy/{kind}/{id}         set one rule (kind users|credentials|numbers), e.g.
//	                                         {"disabled":true}: the kill switch → 200 with the rule
//	DELETE /telgw/policy/{kind}/{id}         remove the rule → 204
//	GET    /telgw/policy/usage               this node's counters per subject
func (s *Server) MountPolicy(eng *policy.Engine) {
	h := &policyHandlers{s: s, eng: eng}
	s.authed.Get("/telgw/policy", h.get)
	s.authed.Put("/telgw/policy", h.put)
	s.authed.Get("/telgw/policy/usage", h.usage)
	s.authed.Put("/telgw/policy/{kind}/{id}", h.putRule)
	s.authed.Delete("/telgw/policy/{kind}/{id}", h.deleteRule)
}

func (h *policyHandlers) get(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, h.eng.Config())
}

func (h *policyHandlers) put(w http.ResponseWriter, r *http.Request) {
	var c policy.Config
	if err := DecodeJSON(r, &c, false); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	if c.Block == nil {
		// Leaving "block" out keeps the shipped list: only an explicit [] unblocks everything.
		c.Block = policy.DefaultBlock()
	}
	if err := h.eng.Put(r.Context(), c); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	WriteJSON(w, http.StatusOK, h.eng.Config())
}

func (h *policyHandlers) usage(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]any{"value": h.eng.Usage()})
}

// rules returns the rule map of kind in c, creating it.
func rules(c *policy.Config, kind string) (map[string]policy.Rule, error) {
	var m *map[string]policy.Rule
	switch kind {
	case "users":
		m = &c.Users
	case "credentials":
		m = &c.Credentials
	case "numbers":
		m = &c.Numbers
	default:
		return nil, problem.NotFound("kind", "%q is not users, credentials or numbers", kind)
	}
	if *m == nil {
		*m = map[string]policy.Rule{}
	}
	return *m, nil
}

func (h *policyHandlers) putRule(w http.ResponseWriter, r *http.Request) {
	var rule policy.Rule
	if err := DecodeJSON(r, &rule, false); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.eng.Config()
	m, err := rules(&c, PathParam(r, "kind"))
	if err == nil {
		m[PathParam(r, "id")] = rule
		err = h.eng.Put(r.Context(), c)
	}
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	WriteJSON(w, http.StatusOK, rule)
}

func (h *policyHandlers) deleteRule(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.eng.Config()
	m, err := rules(&c, PathParam(r, "kind"))
	if err == nil {
		id := PathParam(r, "id")
		if _, ok := m[id]; !ok {
			err = problem.NotFound("id", "no rule for %q", id)
		} else {
			delete(m, id)
			err = h.eng.Put(r.Context(), c)
		}
	}
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
