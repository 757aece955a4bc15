package registrar

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
)

// Contact is one registered device of a user (RFC 3261 §10.3 binding).
type Contact struct {
	// Identity is the ACS communication user the device belongs to.
	Identity string
	// URI is the Contact URI the device registered (often sip:x@y.invalid;transport=ws).
	URI sip.Uri
	// Source is host:port the REGISTER came from: WebSocket contacts are reachable only over
	// that connection (RFC 7118 §5).
	Source string
	// Transport is the transport the REGISTER came over (WS, WSS, UDP, TCP).
	Transport string
	// InstanceID is the +sip.instance (RFC 5626 §4.1) when the device sends one.
	InstanceID string
	// UserAgent is informational.
	UserAgent string
	// Expires is when the binding lapses.
	Expires time.Time
	// proof is the credential the REGISTER authenticated with (Registrar.Live checks it again).
	proof proof
}

// key identifies a binding: the instance id when present (the same device re-registering with
// a new connection replaces its binding), else the contact URI.
func (c Contact) key() string {
	if c.InstanceID != "" {
		return "i:" + c.InstanceID
	}
	return "u:" + c.URI.String()
}

// Location is the in-memory location service of this node. Bindings live with the WebSocket
// connections that carry them, so they are per node by nature; in a cluster Publish copies
// them to the shared store, where the other nodes find which node to send a user's calls to.
type Location struct {
	mu    sync.Mutex
	users map[string]map[string]Contact
	now   func() time.Time
	gauge prometheus.Gauge
	// dirty are the identities whose bindings changed since Publish last wrote them; kick
	// wakes Publish (publish.go).
	dirty map[string]struct{}
	kick  chan struct{}
}

// NewLocation returns an empty location service.
func NewLocation(reg prometheus.Registerer) *Location {
	l := &Location{users: map[string]map[string]Contact{}, now: time.Now, dirty: map[string]struct{}{}, kick: make(chan struct{}, 1),
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "telgw_registrations", Help: "Registered WebRTC/SIP user contacts on this node."})}
	if reg != nil {
		reg.MustRegister(l.gauge)
	}
	return l
}

// Put adds or refreshes a binding.
func (l *Location) Put(c Contact) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.users[c.Identity]
	if m == nil {
		m = map[string]Contact{}
		l.users[c.Identity] = m
	}
	m[c.key()] = c
	l.touch(c.Identity)
	l.count()
}

// ErrTooManyBindings means a REGISTER would take a user past its cap of bindings.
var ErrTooManyBindings = errors.New("registrar: too many registered devices")

// Update applies one REGISTER's changes to identity's bindings atomically (RFC 3261 §10.3 step
// 7: all or none): remove drops bindings, put adds or refreshes them. A new binding that would
// leave the user with more than max live bindings (max > 0) fails the whole update with
// ErrTooManyBindings; refreshing or removing existing ones always works.
func (l *Location) Update(identity string, put, remove []Contact, max int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	m := l.users[identity]
	next := make(map[string]Contact, len(m)+len(put))
	for k, c := range m {
		if c.Expires.After(now) {
			next[k] = c
		}
	}
	for _, c := range remove {
		delete(next, c.key())
	}
	added := false
	for _, c := range put {
		if _, ok := next[c.key()]; !ok {
			added = true
		}
		next[c.key()] = c
	}
	if added && max > 0 && len(next) > max {
		return ErrTooManyBindings
	}
	if len(next) == 0 {
		delete(l.users, identity)
	} else {
		l.users[identity] = next
	}
	l.touch(identity)
	l.count()
	return nil
}

// Remove drops one binding (by contact URI or instance).
func (l *Location) Remove(c Contact) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.users[c.Identity], c.key())
	if len(l.users[c.Identity]) == 0 {
		delete(l.users, c.Identity)
	}
	l.touch(c.Identity)
	l.count()
}

// removeIfProof drops c's binding unless it was refreshed with other credentials meanwhile.
func (l *Location) removeIfProof(c Contact) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur, ok := l.users[c.Identity][c.key()]; ok && cur.proof == c.proof {
		delete(l.users[c.Identity], c.key())
		if len(l.users[c.Identity]) == 0 {
			delete(l.users, c.Identity)
		}
		l.touch(c.Identity)
	}
	l.count()
}

// RemoveAll drops every binding of identity (Contact: * with Expires: 0).
func (l *Location) RemoveAll(identity string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.users, identity)
	l.touch(identity)
	l.count()
}

// RemoveSource drops the bindings carried by a connection that closed.
func (l *Location) RemoveSource(source string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, m := range l.users {
		for k, c := range m {
			if c.Source == source {
				delete(m, k)
				l.touch(id)
			}
		}
		if len(m) == 0 {
			delete(l.users, id)
		}
	}
	l.count()
}

// Lookup returns identity's live bindings, newest expiry first.
func (l *Location) Lookup(identity string) []Contact {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var out []Contact
	for k, c := range l.users[identity] {
		if c.Expires.After(now) {
			out = append(out, c)
		} else {
			delete(l.users[identity], k)
		}
	}
	slices.SortFunc(out, func(a, b Contact) int { return b.Expires.Compare(a.Expires) })
	return out
}

// All returns every live binding on this node, by identity and then newest expiry first (the
// operator console's view of registered users).
func (l *Location) All() []Contact {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var out []Contact
	for _, m := range l.users {
		for _, c := range m {
			if c.Expires.After(now) {
				out = append(out, c)
			}
		}
	}
	slices.SortFunc(out, func(a, b Contact) int {
		if c := strings.Compare(a.Identity, b.Identity); c != 0 {
			return c
		}
		return b.Expires.Compare(a.Expires)
	})
	return out
}

// count updates the gauge; l.mu is held.
func (l *Location) count() {
	n := 0
	for _, m := range l.users {
		n += len(m)
	}
	l.gauge.Set(float64(n))
}

// Sweep removes expired bindings every interval until ctx ends.
func (l *Location) Sweep(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			l.mu.Lock()
			now := l.now()
			for id, m := range l.users {
				for k, c := range m {
					if !c.Expires.After(now) {
						delete(m, k)
						l.touch(id)
					}
				}
				if len(m) == 0 {
					delete(l.users, id)
				}
			}
			l.count()
			l.mu.Unlock()
		}
	}
}

// Registrar answers REGISTER requests (RFC 3261 §10.3).
type Registrar struct {
	Auth     *Authenticator
	Location *Location
	Log      *slog.Logger
	// MinExpires and MaxExpires bound binding lifetimes. Defaults 60s and 3600s.
	MinExpires, MaxExpires time.Duration
	// MaxDevices caps a user's bindings on this node (Kamailio's max_contacts): a REGISTER that
	// would add one more is refused with 403 and the existing bindings stay. Default 10.
	MaxDevices int
	// MaxContacts caps the Contact header values of one REGISTER (403 past it). Default 5.
	MaxContacts int
}

// DefaultMaxDevices and DefaultMaxContacts are the caps when Registrar leaves them 0.
const (
	DefaultMaxDevices  = 10
	DefaultMaxContacts = 5
)

// OnRegister is the sipgo REGISTER handler.
func (r *Registrar) OnRegister(req *sip.Request, tx sip.ServerTransaction) {
	_ = tx.Respond(r.Handle(context.Background(), req))
}

// SecureTransport reports whether a user may REGISTER over transport: SIP over WebSocket
// (WS, or WSS behind TLS; the HTTP listener decides) or TLS, never plain UDP or TCP, where the
// token or digest would cross the network in the clear and the source address is forgeable.
func SecureTransport(transport string) bool {
	switch strings.ToUpper(transport) {
	case "WS", "WSS", "TLS":
		return true
	}
	return false
}

func forbidden(req *sip.Request, reason, warning string) *sip.Response {
	res := sip.NewResponseFromRequest(req, 403, reason, nil)
	res.AppendHeader(sip.NewHeader("Warning", `399 telgw "`+warning+`"`))
	return res
}

// Handle processes a REGISTER and returns the response to send.
func (r *Registrar) Handle(ctx context.Context, req *sip.Request) *sip.Response {
	if !SecureTransport(req.Transport()) {
		if r.Log != nil {
			r.Log.Info("register over an insecure transport refused", "source", req.Source(), "transport", req.Transport())
		}
		return forbidden(req, "Forbidden", "REGISTER only over WebSocket or TLS")
	}
	claims, pr, err := r.Auth.authenticate(ctx, req)
	if err != nil {
		if r.Log != nil && !errorsIsChallenge(err) {
			r.Log.Info("register rejected", "source", req.Source(), "err", err)
		}
		return r.Auth.Reject(req, err)
	}
	minE, maxE := r.MinExpires, r.MaxExpires
	if minE == 0 {
		minE = 60 * time.Second
	}
	if maxE == 0 {
		maxE = time.Hour
	}
	maxDevices, maxContacts := r.MaxDevices, r.MaxContacts
	if maxDevices == 0 {
		maxDevices = DefaultMaxDevices
	}
	if maxContacts == 0 {
		maxContacts = DefaultMaxContacts
	}
	defExp := -1
	if h := req.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil {
			defExp = n
		}
	}
	contacts := req.GetHeaders("Contact")
	// RFC 3261 §10.3 step 6: "Contact: *" only with Expires: 0, removes every binding.
	if len(contacts) == 1 && strings.TrimSpace(contacts[0].Value()) == "*" {
		if defExp != 0 {
			return sip.NewResponseFromRequest(req, 400, "Bad Request", nil)
		}
		r.Location.RemoveAll(claims.Identity)
		return sip.NewResponseFromRequest(req, 200, "OK", nil)
	}
	if len(contacts) > maxContacts {
		if r.Log != nil {
			r.Log.Info("register with too many contacts", "source", req.Source(), "user", claims.Identity, "contacts", len(contacts))
		}
		return forbidden(req, "Too Many Contacts", "at most "+strconv.Itoa(maxContacts)+" Contact values per REGISTER")
	}
	now := time.Now()
	var put, remove []Contact
	for _, h := range contacts {
		var ch sip.ContactHeader
		ch.Params = sip.NewParams()
		if _, err := sip.ParseAddressValue(h.Value(), &ch.Address, &ch.Params); err != nil || ch.Address.Wildcard {
			return sip.NewResponseFromRequest(req, 400, "Bad Contact", nil)
		}
		exp := defExp
		if v, ok := ch.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				exp = n
			}
		}
		if exp < 0 {
			exp = int(maxE / time.Second)
		}
		c := Contact{Identity: claims.Identity, URI: ch.Address, Source: req.Source(), Transport: req.Transport(), proof: pr}
		if inst, ok := ch.Params.Get("+sip.instance"); ok {
			c.InstanceID = strings.Trim(inst, `"<>`)
		}
		if ua := req.GetHeader("User-Agent"); ua != nil {
			c.UserAgent = ua.Value()
		}
		if exp == 0 {
			remove = append(remove, c)
			continue
		}
		d := time.Duration(exp) * time.Second
		if d < minE {
			res := sip.NewResponseFromRequest(req, 423, "Interval Too Brief", nil)
			res.AppendHeader(sip.NewHeader("Min-Expires", strconv.Itoa(int(minE/time.Second))))
			return res
		}
		if d > maxE {
			d = maxE
		}
		c.Expires = now.Add(d)
		put = append(put, c)
	}
	// Over the cap the new binding is refused and the old ones stay, as Kamailio's max_contacts
	// does; 403 rather than its 503, which tells clients to retry (RFC 3261 §21.5.4).
	if err := r.Location.Update(claims.Identity, put, remove, maxDevices); err != nil {
		if r.Log != nil {
			r.Log.Info("register over the device cap", "source", req.Source(), "user", claims.Identity, "max", maxDevices)
		}
		return forbidden(req, "Too Many Registrations", "at most "+strconv.Itoa(maxDevices)+" devices per user")
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	for _, c := range r.Location.Lookup(claims.Identity) {
		secs := int(time.Until(c.Expires).Round(time.Second) / time.Second)
		res.AppendHeader(sip.NewHeader("Contact", "<"+c.URI.String()+">;expires="+strconv.Itoa(secs)))
	}
	return res
}

// Live returns identity's bindings whose credentials still hold, and removes the others: a
// token revoked, expired or whose identity was deleted, possibly on another node (the store is
// shared), must not ring the device it registered. On a store error the bindings are kept.
func (r *Registrar) Live(ctx context.Context, identity string) []Contact {
	cs := r.Location.Lookup(identity)
	out := cs[:0]
	checked := map[proof]bool{}
	for _, c := range cs {
		ok, seen := checked[c.proof]
		if !seen {
			var err error
			if ok, err = r.Auth.live(ctx, identity, c.proof); err != nil {
				if r.Log != nil {
					r.Log.Warn("binding credentials not checked", "user", identity, "err", err)
				}
				ok = true
			}
			checked[c.proof] = ok
		}
		if ok {
			out = append(out, c)
		} else {
			r.Location.removeIfProof(c)
		}
	}
	return out
}

func errorsIsChallenge(err error) bool { return err == ErrChallenge }
