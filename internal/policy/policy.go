// Package policy is telgw's fraud control: which destinations a caller may reach and how much
// it may use. Decisions are pure functions of a Config (Check, the destination rules), and
// usage is counted in an Engine per subject: the WebRTC user, the SIP credential and the
// caller's number of a call or message, each with its own limits (concurrent calls, calls per
// minute, call-minutes per day, SMS per day) and an emergency kill switch.
//
// The Config is shared by every node through the store (Engine.Load, Engine.Put; refreshed on
// an interval), so a kill switch set on one node holds on all of them. The usage counters are
// per node: with N nodes behind a SIP load balancer a subject may reach up to N times its
// limits. Balancing by caller (Kamailio dispatcher algorithm 5, the auth username, or 1, the From URI) keeps one
// subject's calls on one node and its counters exact.
//
// Emergency calls (911, 933) never reach this package: the SIP edge routes them first.
package policy

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Policies name the rule a refusal comes from; they appear in SIP Warning headers, API errors
// and events.
const (
	// KillSwitch: the subject is disabled by the operator.
	KillSwitch = "kill-switch"
	// DestinationBlocked: the number is on the block list (premium rate, IRSF).
	DestinationBlocked = "destination-blocked"
	// DestinationNotAllowed: the number is outside an allow list that applies.
	DestinationNotAllowed = "destination-not-allowed"
	// ConcurrentCalls: the subject has as many calls in progress as it may.
	ConcurrentCalls = "concurrent-calls"
	// CallsPerMinute: the subject started as many calls in the last minute as it may.
	CallsPerMinute = "calls-per-minute"
	// CallMinutesPerDay: the subject talked as many minutes today (UTC) as it may.
	CallMinutesPerDay = "call-minutes-per-day"
	// SMSPerDay: the number sent as many messages today (UTC) as it may.
	SMSPerDay = "sms-per-day"
)

// Limits are one subject's usage limits. In Config.Defaults 0 means no limit; in a Rule 0
// means the default applies and a negative value means no limit.
type Limits struct {
	// ConcurrentCalls caps calls in progress.
	ConcurrentCalls int `json:"concurrentCalls,omitempty"`
	// CallsPerMinute caps calls started in any 60 s.
	CallsPerMinute int `json:"callsPerMinute,omitempty"`
	// CallMinutesPerDay caps answered minutes per UTC day; a call is counted when it ends
	// (one in progress is not cut).
	CallMinutesPerDay int `json:"callMinutesPerDay,omitempty"`
	// SMSPerDay caps messages (recipients) per UTC day.
	SMSPerDay int `json:"smsPerDay,omitempty"`
}

// over returns r's limits on top of d.
func (d Limits) over(r Limits) Limits {
	pick := func(def, v int) int {
		switch {
		case v < 0:
			return 0
		case v > 0:
			return v
		}
		return def
	}
	return Limits{ConcurrentCalls: pick(d.ConcurrentCalls, r.ConcurrentCalls), CallsPerMinute: pick(d.CallsPerMinute, r.CallsPerMinute),
		CallMinutesPerDay: pick(d.CallMinutesPerDay, r.CallMinutesPerDay), SMSPerDay: pick(d.SMSPerDay, r.SMSPerDay)}
}

// Rule is the policy of one user, credential or number.
type Rule struct {
	// Disabled is the kill switch: no calls (but emergency calls) and no messages.
	Disabled bool `json:"disabled,omitempty"`
	// Allow, when set, lists the E.164 prefixes this subject may call (on top of the
	// resource-wide Allow: both must allow a number).
	Allow []string `json:"allow,omitempty"`
	// Limits override the defaults.
	Limits
}

// Config is the whole policy.
type Config struct {
	// Allow lists the E.164 prefixes any caller may reach ("+1", "+44"); empty: any number the
	// outbound routes match (and the block list does not refuse).
	Allow []string `json:"allow"`
	// Block lists refused prefixes. Default: the shipped list (DefaultBlock).
	Block []string `json:"block"`
	// Defaults are the limits of every user, credential and number without its own.
	Defaults Limits `json:"defaults"`
	// Users, Credentials and Numbers are the per-subject rules, keyed by the communication
	// user id, the SIP credential's username and the E.164 number.
	Users       map[string]Rule `json:"users,omitempty"`
	Credentials map[string]Rule `json:"credentials,omitempty"`
	Numbers     map[string]Rule `json:"numbers,omitempty"`
}

//go:embed blocked.txt
var blockedTxt string

// DefaultBlock is the shipped block list (blocked.txt): NANP 900/976, the Caribbean NANP
// destinations of callback scams, satellite codes and IRSF-heavy country codes and premium
// ranges.
func DefaultBlock() []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(blockedTxt))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// DefaultConfig is the policy of a fresh node: the shipped block list, no allow list, and
// per-subject defaults of 10 concurrent calls, 30 calls a minute, 600 call-minutes and 1000
// messages a day.
func DefaultConfig() Config {
	return Config{Block: DefaultBlock(), Defaults: Limits{ConcurrentCalls: 10, CallsPerMinute: 30, CallMinutesPerDay: 600, SMSPerDay: 1000}}
}

// Validate reports every problem, each naming its key (e.g. "block[3]").
func (c Config) Validate() error {
	var errs []error
	prefixes := func(key string, list []string) {
		for i, p := range list {
			if !validPrefix(p) {
				errs = append(errs, fmt.Errorf("%s[%d]: %q is not an E.164 prefix (+ and 1–15 digits)", key, i, p))
			}
		}
	}
	limits := func(key string, l Limits, rule bool) {
		for name, v := range map[string]int{"concurrentCalls": l.ConcurrentCalls, "callsPerMinute": l.CallsPerMinute,
			"callMinutesPerDay": l.CallMinutesPerDay, "smsPerDay": l.SMSPerDay} {
			if v < 0 && !rule {
				errs = append(errs, fmt.Errorf("%s.%s: must not be negative (0: no limit)", key, name))
			}
		}
	}
	prefixes("allow", c.Allow)
	prefixes("block", c.Block)
	limits("defaults", c.Defaults, false)
	for kind, m := range map[string]map[string]Rule{"users": c.Users, "credentials": c.Credentials, "numbers": c.Numbers} {
		for _, k := range sortedKeys(m) {
			key := fmt.Sprintf("%s[%q]", kind, k)
			if k == "" {
				errs = append(errs, fmt.Errorf("%s: the key must not be empty", key))
			}
			if kind == "numbers" && !validPrefix(k) {
				errs = append(errs, fmt.Errorf("%s: %q is not an E.164 number", key, k))
			}
			prefixes(key+".allow", m[k].Allow)
			limits(key, m[k].Limits, true)
		}
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

func sortedKeys(m map[string]Rule) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func validPrefix(p string) bool {
	if len(p) < 2 || len(p) > 16 || p[0] != '+' {
		return false
	}
	for _, r := range p[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Subject is who a call or message is for: any of the three may be empty.
type Subject struct {
	// User is the communication user id of a WebRTC caller.
	User string
	// Credential is the SIP credential's username of a customer endpoint.
	Credential string
	// Number is the E.164 caller id (or SMS sender).
	Number string
}

// key is one counted subject.
type key struct{ kind, id string }

func (k key) String() string { return k.kind + ":" + k.id }

func (s Subject) keys() []key {
	var out []key
	if s.User != "" {
		out = append(out, key{"user", s.User})
	}
	if s.Credential != "" {
		out = append(out, key{"credential", s.Credential})
	}
	if s.Number != "" {
		out = append(out, key{"number", s.Number})
	}
	return out
}

// rule is the Rule of k in c (zero when none).
func (c *Config) rule(k key) (Rule, bool) {
	var m map[string]Rule
	switch k.kind {
	case "user":
		m = c.Users
	case "credential":
		m = c.Credentials
	case "number":
		m = c.Numbers
	}
	r, ok := m[k.id]
	return r, ok
}

// Violation is a refusal: which policy, for which subject, and why. Edges map it once: SIP
// 403 (486 for concurrent calls, 503 with Retry-After for calls per minute) with a Warning
// naming the policy, HTTP 403/429 with an ACS error body.
type Violation struct {
	// Policy is one of the policy names (KillSwitch, DestinationBlocked, …).
	Policy string
	// Subject is the counted subject ("user:…", "credential:…", "number:…"), empty for a
	// resource-wide destination rule.
	Subject string
	// Destination is the number called (empty for SMS limits).
	Destination string
	// Detail is a sentence for people.
	Detail string
}

func (v *Violation) Error() string { return "policy " + v.Policy + ": " + v.Detail }

// hasPrefix reports whether number starts with any of prefixes, returning it.
func hasPrefix(number string, prefixes []string) (string, bool) {
	for _, p := range prefixes {
		if strings.HasPrefix(number, p) {
			return p, true
		}
	}
	return "", false
}

// Check decides whether s may call number by the destination rules and kill switches only
// (no usage): nil, or a *Violation.
func (c *Config) Check(s Subject, number string) error {
	for _, k := range s.keys() {
		if r, _ := c.rule(k); r.Disabled {
			return &Violation{Policy: KillSwitch, Subject: k.String(), Destination: number, Detail: k.String() + " is disabled by the operator"}
		}
	}
	if p, ok := hasPrefix(number, c.Block); ok {
		return &Violation{Policy: DestinationBlocked, Destination: number, Detail: fmt.Sprintf("%s is blocked (prefix %s: premium rate or high fraud risk)", number, p)}
	}
	if len(c.Allow) > 0 {
		if _, ok := hasPrefix(number, c.Allow); !ok {
			return &Violation{Policy: DestinationNotAllowed, Destination: number, Detail: number + " is outside the allowed destinations"}
		}
	}
	for _, k := range s.keys() {
		if r, _ := c.rule(k); len(r.Allow) > 0 {
			if _, ok := hasPrefix(number, r.Allow); !ok {
				return &Violation{Policy: DestinationNotAllowed, Subject: k.String(), Destination: number,
					Detail: number + " is outside the destinations allowed for " + k.String()}
			}
		}
	}
	return nil
}

// limits are the effective limits of k.
func (c *Config) limits(k key) Limits {
	r, _ := c.rule(k)
	return c.Defaults.over(r.Limits)
}

// day is the UTC day of t, the period of the daily limits.
func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }
