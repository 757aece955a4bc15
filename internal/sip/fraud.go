package sip

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/e164"
	"github.com/telgw/telgw/internal/policy"
	"github.com/telgw/telgw/internal/stir"
)

// fraudEnv is what calls use of the fraud controls: the policy engine, STIR/SHAKEN and the
// emergency route (emergency.go), shared by every call.
type fraudEnv struct {
	pol       *policy.Engine // nil: no policy (tests of other features)
	events    policy.Events  // nil: no events
	signer    *stir.Signer   // nil: outbound calls are not signed
	verifier  *stir.Verifier // nil: inbound Identity is not verified
	emergency EmergencyConfig
}

// callFraud is one call's state of the fraud controls.
type callFraud struct {
	subject   policy.Subject
	admitted  *policy.Call // released when the call ends
	emergency bool
	dialed    string // the emergency number dialled
	callback  string // the emergency call's callback number
	attest    string // the attestation signed toward the carrier
	verstat   string // the inbound Identity's verification status
	diversion []sip.Header
	app       bool // an app's call (Call Automation createCall), its caller id checked by the engine

	mu        sync.Mutex
	transfers []*policy.Call // admissions of REFER transfers out through the trunks
}

// verstatHeader carries an inbound call's verification status to apps: Call Automation's
// IncomingCall lists the INVITE's X-MS-Custom-* headers in customContext.sipHeaders.
const verstatHeader = "X-MS-Custom-Verstat"

// policyStatus maps a refusal to the caller's final response: 486 for concurrent calls (the
// caller is busy, RFC 3261 §21.4.24), 503 with Retry-After for the per-minute rate (§21.5.4),
// 403 for the rest (§21.4.4); each with a Warning naming the policy (RFC 3261 §20.43, code 399
// miscellaneous) so the caller's logs say which rule refused it.
func policyStatus(v *policy.Violation) (int, string, []sip.Header) {
	warn := sip.NewHeader("Warning", fmt.Sprintf(`399 telgw "policy %s: %s"`, v.Policy, strings.ReplaceAll(v.Detail, `"`, "'")))
	switch v.Policy {
	case policy.ConcurrentCalls:
		return 486, "Busy Here", []sip.Header{warn}
	case policy.CallsPerMinute:
		return 503, "Service Unavailable", []sip.Header{warn, sip.NewHeader("Retry-After", "60")}
	}
	return 403, "Forbidden", []sip.Header{warn}
}

// admitPolicy checks the call to called against the policy and counts it; on a refusal it
// answers the caller, reports the event and returns false.
func (c *call) admitPolicy(req *sip.Request, tx sip.ServerTransaction, called string) bool {
	f := c.env.fraud
	if f == nil || f.pol == nil {
		return true
	}
	adm, err := f.pol.StartCall(c.fraud.subject, called)
	if err == nil {
		c.fraud.admitted = adm
		return true
	}
	var v *policy.Violation
	if !errors.As(err, &v) {
		c.reject(req, tx, 500, "Server Internal Error", nil)
		return false
	}
	c.env.log.Info("call refused by policy", "call_id", c.id, "number", called, "policy", v.Policy, "subject", v.Subject)
	if f.events != nil {
		// Off the call's path: the caller's answer never waits for the event queue.
		go f.events.Refused(context.WithoutCancel(c.env.stop()), policy.Refusal{Channel: "call", ID: c.id, From: c.cc.From(), To: called,
			Subject: c.fraud.subject, Violation: *v, At: time.Now()})
	}
	code, reason, hdrs := policyStatus(v)
	c.reject(req, tx, code, reason, nil, hdrs...)
	return false
}

// admitApp checks an app's call out (Call Automation createCall; its caller id is one of the
// resource's numbers, checked when the call was created) against the policy with the caller's
// number as subject; a refusal fails the call with the SIP code the policy maps to.
func (c *call) admitApp(conn *calls.Connection) bool {
	c.fraud.app = true
	c.fraud.subject = policy.Subject{Number: c.cc.From()}
	f := c.env.fraud
	if f == nil || f.pol == nil {
		return true
	}
	adm, err := f.pol.StartCall(c.fraud.subject, c.cc.To())
	if err == nil {
		c.fraud.admitted = adm
		return true
	}
	var v *policy.Violation
	if !errors.As(err, &v) {
		v = &policy.Violation{Policy: "error", Detail: err.Error()}
	}
	c.env.log.Info("app's call refused by policy", "call_id", c.id, "number", c.cc.To(), "policy", v.Policy)
	if f.events != nil {
		go f.events.Refused(context.WithoutCancel(c.env.stop()), policy.Refusal{Channel: "call", ID: c.id, From: c.cc.From(), To: c.cc.To(),
			Subject: c.fraud.subject, Violation: *v, At: time.Now()})
	}
	code, _, _ := policyStatus(v)
	conn.Failed(calls.ResultInformation{Code: code, Message: v.Error()})
	c.finish(code, nil)
	return false
}

// admitTransfer checks a REFER's transfer out through the trunks (targets with a trunk)
// against the policy, as a call the transferor places: its subject is the call's when the
// caller's side transfers (a customer's endpoint or WebRTC user calling out), else the number
// of this service the call involves. Transfers to telgw's own numbers pass. A refusal is
// reported (event) and returned.
func (c *call) admitTransfer(targets []target, number string, side int) (*policy.Call, *policy.Violation) {
	f := c.env.fraud
	if f == nil || f.pol == nil || len(targets) == 0 || targets[0].trunk == nil {
		return nil, nil
	}
	s := policy.Subject{Number: c.cc.To()} // the callee's side of an inbound call: the number called
	if side == 0 {
		s = c.fraud.subject
		if s == (policy.Subject{}) {
			s.Number = c.cc.From()
		}
	}
	adm, err := f.pol.StartCall(s, number)
	if err == nil {
		return adm, nil
	}
	v, ok := err.(*policy.Violation)
	if !ok {
		v = &policy.Violation{Policy: "error", Detail: err.Error()}
	}
	c.env.log.Info("transfer refused by policy", "call_id", c.id, "number", number, "policy", v.Policy)
	if f.events != nil {
		go f.events.Refused(context.WithoutCancel(c.env.stop()), policy.Refusal{Channel: "call", ID: c.id, From: c.cc.From(), To: number,
			Subject: s, Violation: *v, At: time.Now()})
	}
	return nil, v
}

// keepTransfer holds a transfer's admission until the call ends.
func (c *call) keepTransfer(adm *policy.Call) {
	if adm == nil {
		return
	}
	c.fraud.mu.Lock()
	c.fraud.transfers = append(c.fraud.transfers, adm)
	c.fraud.mu.Unlock()
}

// endFraud releases the call's policy slots with its talk time and records the STIR/SHAKEN
// outcome on its CDR.
func (c *call) endFraud(cdr *calls.CDR) {
	c.fraud.admitted.End(cdr.Duration())
	c.fraud.mu.Lock()
	for _, adm := range c.fraud.transfers {
		adm.End(cdr.Duration())
	}
	c.fraud.mu.Unlock()
	cdr.Verstat, cdr.Attest = c.fraud.verstat, c.fraud.attest
}

// callerIDError returns why an endpoint with numbers may not present req's caller id, or nil.
//
// The caller-ID rules (docs/FRAUD.md, "Caller-ID rules"): the From number must be one of the credential's
// numbers (its purchased numbers). A call the endpoint forwards keeps that rule: a PBX
// forwarding a call out presents its own number, never the original caller's. Diversion
// (RFC 5806) and History-Info (RFC 7044) headers are accepted only when every number in them
// is one of the credential's, and are then passed to the carrier; P-Asserted-Identity,
// P-Preferred-Identity and Identity from the endpoint are never passed on (telgw asserts
// and signs the caller itself).
func callerIDError(req *sip.Request, from string, numbers []string) error {
	if !slices.Contains(numbers, from) {
		return errors.New("caller id is not one of your numbers")
	}
	for _, name := range []string{"Diversion", "History-Info"} {
		for _, h := range req.GetHeaders(name) {
			for _, n := range headerNumbers(h.Value()) {
				if !slices.Contains(numbers, n) {
					return fmt.Errorf("%s number %s is not one of your numbers", name, n)
				}
			}
		}
	}
	return nil
}

// headerNumbers reads the numbers of the name-addr entries of a Diversion or History-Info
// value: each "<sip:+1…@host…>" or "<tel:+1…>" (comma-separated entries, RFC 5806 §3, RFC 7044
// §10.1). An entry whose user is not a number gives itself, so that it is refused.
func headerNumbers(v string) []string {
	var out []string
	for v != "" {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			out = append(out, v[i:])
			break
		}
		uri := v[i+1 : i+j]
		v = v[i+j+1:]
		var user string
		switch {
		case strings.HasPrefix(strings.ToLower(uri), "tel:"):
			user, _, _ = strings.Cut(uri[4:], ";")
		default:
			_, rest, ok := strings.Cut(uri, ":")
			if !ok {
				out = append(out, uri)
				continue
			}
			user, _, _ = strings.Cut(rest, "@")
			user, _, _ = strings.Cut(user, ";")
		}
		if n, err := e164.Normalize(user); err == nil {
			user = n
		}
		out = append(out, user)
	}
	return out
}

// keepDiversion remembers the caller's checked Diversion and History-Info headers for the
// carrier leg.
func (c *call) keepDiversion(req *sip.Request) {
	for _, name := range []string{"Diversion", "History-Info"} {
		for _, h := range req.GetHeaders(name) {
			c.fraud.diversion = append(c.fraud.diversion, sip.NewHeader(name, h.Value()))
		}
	}
}

// attestation is the SHAKEN attestation for a call out from the caller's number: A when the
// caller is an authenticated customer presenting a number of its own (the caller-ID rules
// make that every endpoint and WebRTC call), B when telgw knows the customer but not the
// number, C otherwise (RFC 8588 §4, ATIS-1000074 §5.2.3).
func (c *call) attestation() string {
	s := c.fraud.subject
	switch {
	case (s.User != "" || s.Credential != "" || c.fraud.app) && s.Number != "" && s.Number == c.cc.From():
		return stir.AttestFull
	case s.User != "" || s.Credential != "":
		return stir.AttestPartial
	}
	return stir.AttestGateway
}

// decorate adds what the carrier leg's INVITE carries of the fraud controls: the Identity
// header (RFC 8224) toward a trunk, the caller's checked Diversion/History-Info, and on an
// emergency call the callback number and location (emergency.go). Toward a customer's PBX
// (an inbound call) it writes the verification status on the From number (ATIS-1000074
// §5.3.1 verstat).
func (c *call) decorate(inv *sip.Request, t target) {
	f := c.env.fraud
	if f == nil {
		return
	}
	if t.trunk == nil {
		if c.fraud.verstat != "" {
			if from := inv.From(); from != nil {
				from.Address.User += ";verstat=" + c.fraud.verstat
			}
		}
		return
	}
	for _, h := range c.fraud.diversion {
		inv.AppendHeader(h)
	}
	if c.fraud.emergency {
		c.emergencyHeaders(inv)
	}
	if f.signer != nil {
		orig := c.cc.From()
		if c.fraud.emergency {
			orig = c.fraud.callback
		}
		c.fraud.attest = c.attestation()
		id, err := f.signer.Sign(orig, c.cc.To(), c.fraud.attest)
		if err != nil {
			c.env.log.Warn("identity not signed", "call_id", c.id, "err", err)
			c.fraud.attest = ""
			return
		}
		inv.AppendHeader(sip.NewHeader("Identity", id))
		// RFC 3261 §18.1.1: past 1300 bytes a request must not go over UDP, and sipgo refuses
		// to send it. A call unsigned beats a call failed: drop the Identity and say so (use
		// tcp or tls toward carriers that want every call signed).
		if strings.EqualFold(inv.Transport(), "udp") && len(inv.String()) > udpMaxRequest {
			inv.RemoveHeader("Identity")
			c.fraud.attest = ""
			c.env.log.Warn("identity left out: the INVITE would be too big for UDP", "call_id", c.id, "trunk", t.trunk.Name)
		}
	}
}

// udpMaxRequest is RFC 3261 §18.1.1's bound for a request over UDP with the path MTU unknown.
const udpMaxRequest = 1300

// verifyInbound verifies the Identity header of a carrier's INVITE to e164 (RFC 8224 §6.2),
// keeps the verstat for the CDR and the callee, and replaces any verstat header the carrier
// sent with telgw's own finding.
func (c *call) verifyInbound(req *sip.Request, called string) {
	for _, h := range slices.Clone(req.Headers()) {
		if strings.EqualFold(h.Name(), verstatHeader) {
			req.RemoveHeader(h.Name())
		}
	}
	f := c.env.fraud
	if f == nil || f.verifier == nil {
		return
	}
	h := req.GetHeader("Identity")
	if h == nil {
		h = req.GetHeader("y") // RFC 8224 §4: compact form
	}
	if h == nil {
		c.fraud.verstat = stir.NoValidation
		req.AppendHeader(sip.NewHeader(verstatHeader, stir.NoValidation))
		return
	}
	ctx, cancel := context.WithTimeout(c.env.stop(), 3*time.Second)
	res := f.verifier.Verify(ctx, h.Value(), c.cc.From(), called)
	cancel()
	c.fraud.verstat = res.Verstat
	if res.Verstat == stir.Failed {
		c.env.log.Info("identity not verified", "call_id", c.id, "number", called, "reason", res.Reason)
	}
	req.AppendHeader(sip.NewHeader(verstatHeader, res.Verstat))
}
