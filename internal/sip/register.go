package sip

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// registration is one trunk's REGISTER binding (RFC 3261 §10): telgw registers its Contact
// for the trunk's username at carriers that send inbound calls only to registered contacts.
type registration struct {
	mu        sync.Mutex
	req       *sip.Request // kept so refreshes reuse Call-ID and increment CSeq (§10.2.4)
	next      time.Time
	busy      bool
	expiresAt time.Time
}

// registerTrunks runs from keepalive's ticker: every trunk with Register set gets a REGISTER when
// its binding is due, refreshed at half the expiry the registrar granted, retried every 30 s
// after a failure.
func (s *trunkTable) registerTrunks(ctx context.Context, now time.Time) {
	for _, t := range s.all() {
		if !t.Register || t.Username == "" {
			continue
		}
		s.regMu.Lock()
		r, ok := s.regs[t.Name]
		if !ok {
			r = &registration{}
			s.regs[t.Name] = r
		}
		s.regMu.Unlock()
		r.mu.Lock()
		due := !r.busy && !now.Before(r.next)
		if due {
			r.busy = true
		}
		r.mu.Unlock()
		if !due {
			continue
		}
		s.regWG.Add(1)
		go func() {
			defer s.regWG.Done()
			s.registerOnce(ctx, t, r, s.registerExpiry(t))
		}()
	}
}

func (s *trunkTable) registerExpiry(t *trunk) time.Duration {
	if t.RegisterExpires > 0 {
		return t.RegisterExpires
	}
	return time.Hour
}

func (s *trunkTable) registerOnce(ctx context.Context, t *trunk, r *registration, expiry time.Duration) {
	r.mu.Lock()
	req := r.req
	if req == nil {
		host, port := hostOf(t.Address), portOf(t.Address)
		aor := sip.Uri{Scheme: "sip", User: t.Username, Host: host}
		req = sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: host, Port: port})
		req.SetTransport(strings.ToUpper(t.Transport))
		from := sip.FromHeader{Address: aor, Params: sip.NewParams()}
		from.Params.Add("tag", sip.GenerateTagN(16))
		req.AppendHeader(&from)
		req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
		contact := s.sc.dialogs[t.Transport].ContactHDR
		contact.Address.User = t.Username
		req.AppendHeader(&contact)
		r.req = req
	}
	r.mu.Unlock()
	req.RemoveHeader("Expires")
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expiry.Seconds()))))
	req.RemoveHeader("Authorization")
	req.RemoveHeader("Proxy-Authorization")
	req.RemoveHeader("Via")
	ctx, cancel := context.WithTimeout(ctx, 32*time.Second)
	defer cancel()
	res, err := s.sc.client.Do(ctx, req, sipgo.ClientRequestRegisterBuild)
	if err == nil && (res.StatusCode == 401 || res.StatusCode == 407) && t.Password != "" {
		res, err = s.sc.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: t.Username, Password: t.Password})
	}
	granted := time.Duration(0)
	if err == nil && res.IsSuccess() {
		granted = expiry
		if h := res.GetHeader("Expires"); h != nil {
			if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil {
				granted = time.Duration(n) * time.Second
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.busy = false
	now := time.Now()
	if granted > 0 {
		r.expiresAt = now.Add(granted)
		r.next = now.Add(granted / 2)
		s.m.registered.WithLabelValues(t.Name).Set(1)
		return
	}
	code := 0
	if res != nil {
		code = res.StatusCode
	}
	if expiry > 0 {
		s.log.Warn("trunk registration failed", "trunk", t.Name, "code", code, "err", err)
	}
	r.expiresAt = time.Time{}
	r.next = now.Add(30 * time.Second)
	s.m.registered.WithLabelValues(t.Name).Set(0)
}

// registered reports whether telgw holds a current REGISTER binding at the trunk.
func (s *trunkTable) registered(name string) bool {
	s.regMu.Lock()
	r, ok := s.regs[name]
	s.regMu.Unlock()
	if !ok {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return time.Now().Before(r.expiresAt)
}
