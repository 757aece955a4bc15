package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/telgw/telgw/internal/problem"
)

// SettingsKey is the store setting that holds the shared policy document (JSON Config).
const SettingsKey = "policy"

// Settings is the shared key-value store the policy document lives in (internal/store's
// settings table implements it).
type Settings interface {
	SettingGet(ctx context.Context, key string) (string, error)
	SettingPut(ctx context.Context, key, value string) error
}

// Engine holds the current Config and this node's usage counters. It is safe for concurrent
// use.
type Engine struct {
	settings Settings
	log      *slog.Logger

	mu    sync.Mutex
	now   func() time.Time // the clock; SetNow
	cfg   Config
	usage map[key]*usage
}

// SetNow replaces the clock (tests move it). Default time.Now.
func (e *Engine) SetNow(now func() time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = now
}

// usage is one subject's counters on this node.
type usage struct {
	active  int
	starts  []time.Time // call starts within the last minute, oldest first (at most the limit)
	day     string
	seconds float64 // answered call time on day
	sms     int     // messages on day
}

// New returns an Engine with cfg (validated). settings, when not nil, shares the policy with
// the other nodes (Load, Put, Run).
func New(cfg Config, settings Settings, log *slog.Logger) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{now: time.Now, settings: settings, log: log, cfg: cfg, usage: map[key]*usage{}}, nil
}

// Config returns a copy of the current policy.
func (e *Engine) Config() Config {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, _ := json.Marshal(e.cfg)
	var c Config
	_ = json.Unmarshal(b, &c)
	return c
}

// Set replaces the policy on this node (Put also stores it for the others).
func (e *Engine) Set(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	e.mu.Lock()
	e.cfg = cfg
	e.mu.Unlock()
	return nil
}

// Put validates cfg, stores it for every node and applies it here. A problem is a
// problem.Invalid naming the key.
func (e *Engine) Put(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return invalid(err)
	}
	if e.settings != nil {
		b, err := json.Marshal(cfg)
		if err != nil {
			return err
		}
		if err := e.settings.SettingPut(ctx, SettingsKey, string(b)); err != nil {
			return fmt.Errorf("store policy: %w", err)
		}
	}
	return e.Set(cfg)
}

// invalid turns the first "key: message" error of a Validate into a problem.Invalid.
func invalid(err error) error {
	first := err
	if j, ok := err.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) > 0 {
		first = j.Unwrap()[0]
	}
	k, msg, ok := cutKey(first.Error())
	if !ok {
		return problem.Invalid("policy", "%v", err)
	}
	return problem.Invalid(k, "%s", msg)
}

func cutKey(s string) (string, string, bool) {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == ':' && s[i+1] == ' ' {
			return s[:i], s[i+2:], true
		}
	}
	return "", "", false
}

// Load reads the stored policy, if any, and applies it; without one the node keeps its
// configured policy.
func (e *Engine) Load(ctx context.Context) error {
	if e.settings == nil {
		return nil
	}
	v, err := e.settings.SettingGet(ctx, SettingsKey)
	if errors.Is(err, problem.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load policy: %w", err)
	}
	var c Config
	if err := json.Unmarshal([]byte(v), &c); err != nil {
		return fmt.Errorf("load policy: %w", err)
	}
	return e.Set(c)
}

// Run reloads the stored policy every interval until ctx ends, so a change made on another
// node (a kill switch) applies here within the interval.
func (e *Engine) Run(ctx context.Context, interval time.Duration) error {
	if e.settings == nil || interval <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := e.Load(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("policy reload", "err", err)
			}
		}
	}
}

func (e *Engine) get(k key, now time.Time) *usage {
	u := e.usage[k]
	if u == nil {
		u = &usage{}
		e.usage[k] = u
	}
	if d := day(now); u.day != d {
		u.day, u.seconds, u.sms = d, 0, 0
	}
	cut := now.Add(-time.Minute)
	i := 0
	for i < len(u.starts) && !u.starts[i].After(cut) {
		i++
	}
	u.starts = u.starts[i:]
	return u
}

// Call is a call admitted by StartCall; End releases it.
type Call struct {
	e    *Engine
	keys []key
	once sync.Once
}

// StartCall admits s's call to number: the destination rules and kill switches (Check), then
// each subject's concurrent calls, calls per minute and call-minutes today. It counts the
// call on success; the caller must End it.
func (e *Engine) StartCall(s Subject, number string) (*Call, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.cfg.Check(s, number); err != nil {
		return nil, err
	}
	now := e.now()
	keys := s.keys()
	for _, k := range keys {
		l, u := e.cfg.limits(k), e.get(k, now)
		switch {
		case l.ConcurrentCalls > 0 && u.active >= l.ConcurrentCalls:
			return nil, &Violation{Policy: ConcurrentCalls, Subject: k.String(), Destination: number,
				Detail: fmt.Sprintf("%s has %d calls in progress (limit %d)", k, u.active, l.ConcurrentCalls)}
		case l.CallsPerMinute > 0 && len(u.starts) >= l.CallsPerMinute:
			return nil, &Violation{Policy: CallsPerMinute, Subject: k.String(), Destination: number,
				Detail: fmt.Sprintf("%s started %d calls in the last minute (limit %d)", k, len(u.starts), l.CallsPerMinute)}
		case l.CallMinutesPerDay > 0 && u.seconds >= float64(l.CallMinutesPerDay)*60:
			return nil, &Violation{Policy: CallMinutesPerDay, Subject: k.String(), Destination: number,
				Detail: fmt.Sprintf("%s used %d of %d call-minutes today (UTC)", k, int(u.seconds/60), l.CallMinutesPerDay)}
		}
	}
	for _, k := range keys {
		u := e.get(k, now)
		u.active++
		// Only a limited subject's starts are kept, and only as many as its limit: memory
		// stays bounded whatever the call rate.
		if l := e.cfg.limits(k).CallsPerMinute; l > 0 {
			u.starts = append(u.starts, now)
			if len(u.starts) > l {
				u.starts = u.starts[len(u.starts)-l:]
			}
		}
	}
	return &Call{e: e, keys: keys}, nil
}

// End releases the call's concurrent slot and adds its answered time to today's minutes.
// Only the first End counts.
func (c *Call) End(answered time.Duration) {
	if c == nil {
		return
	}
	c.once.Do(func() {
		e := c.e
		e.mu.Lock()
		defer e.mu.Unlock()
		now := e.now()
		for _, k := range c.keys {
			u := e.get(k, now)
			u.active = max(0, u.active-1)
			u.seconds += max(0, answered.Seconds())
		}
	})
}

// SendSMS admits n messages from s (the sender's number, and the user or credential when
// known): kill switches and each subject's messages today. It counts them on success.
func (e *Engine) SendSMS(s Subject, n int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	keys := s.keys()
	for _, k := range keys {
		if r, _ := e.cfg.rule(k); r.Disabled {
			return &Violation{Policy: KillSwitch, Subject: k.String(), Detail: k.String() + " is disabled by the operator"}
		}
		l, u := e.cfg.limits(k), e.get(k, now)
		if l.SMSPerDay > 0 && u.sms+n > l.SMSPerDay {
			return &Violation{Policy: SMSPerDay, Subject: k.String(),
				Detail: fmt.Sprintf("%s sent %d of %d messages today (UTC); %d more would pass the limit", k, u.sms, l.SMSPerDay, n)}
		}
	}
	for _, k := range keys {
		e.get(k, now).sms += n
	}
	return nil
}

// Usage is a subject's counters on this node.
type Usage struct {
	Subject          string  `json:"subject"`
	ActiveCalls      int     `json:"activeCalls"`
	CallsLastMinute  int     `json:"callsLastMinute"`
	CallMinutesToday float64 `json:"callMinutesToday"`
	SMSToday         int     `json:"smsToday"`
	Limits           Limits  `json:"limits"`
	Disabled         bool    `json:"disabled"`
}

// Usage returns this node's counters of every subject seen today.
func (e *Engine) Usage() []Usage {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	out := make([]Usage, 0, len(e.usage))
	for k := range e.usage {
		u := e.get(k, now)
		r, _ := e.cfg.rule(k)
		out = append(out, Usage{Subject: k.String(), ActiveCalls: u.active, CallsLastMinute: len(u.starts),
			CallMinutesToday: u.seconds / 60, SMSToday: u.sms, Limits: e.cfg.limits(k), Disabled: r.Disabled})
	}
	sortUsage(out)
	return out
}
