// Package httpcarrier is telgw's HTTP SMS carrier connector: it submits messages with a
// configurable request (URL template, method, body, basic auth, headers) and takes delivery
// reports and inbound messages on callback URLs, in the style of Kannel's smsbox sendsms
// interface (dlr-url with %d status, sms-service get-url).
package httpcarrier

import (
	"cmp"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/telgw/telgw/internal/sms"
	"github.com/telgw/telgw/internal/sms/receipt"
)

// Config describes one HTTP carrier.
type Config struct {
	// Name is the carrier's name (required).
	Name string
	// URL is the submit URL template (required). Placeholders, query-escaped: {from}, {to}
	// (E.164), {fromDigits}, {toDigits} (without "+"), {text}, {messageId}, {dlrUrl},
	// {dlrMask} (3 when a report is asked, else 0).
	URL string
	// Method is GET (default) or POST.
	Method string
	// Body is the POST body template (same placeholders; JSON-escaped when ContentType is
	// JSON, query-escaped otherwise).
	Body string
	// ContentType of the body. Default application/x-www-form-urlencoded.
	ContentType string
	// Username and Password add HTTP basic auth when set.
	Username, Password string
	// Headers are added to every submit.
	Headers map[string]string
	// CallbackToken authenticates the carrier's DLR and inbound callbacks (?token=…); required.
	CallbackToken string
	// DLRURL is the delivery report URL template handed to the carrier as {dlrUrl}. Default
	// "{base}telgw/carriers/{name}/dlr?token={token}&messageId={messageId}&status=%d" (Kannel
	// replaces %d with its DLR type).
	DLRURL string
	// PublicBase returns telgw's base URL ("http://host:port/") for {base}.
	PublicBase func() string
	// Timeout bounds one submit. Default 10s.
	Timeout time.Duration
	// Client sends requests. Default an http.Client with Timeout.
	Client *http.Client
	// Logger receives warnings. Default discards.
	Logger *slog.Logger
}

// Carrier is an HTTP carrier; it implements sms.Carrier and serves its callbacks.
type Carrier struct {
	cfg Config
	log *slog.Logger
	// h takes the callbacks; Run sets it and then closes ready.
	h     sms.CarrierHandler
	ready chan struct{}
	once  sync.Once
}

// readyWait bounds how long a callback arriving before Run waits for the handler.
const readyWait = 5 * time.Second

var _ sms.Carrier = (*Carrier)(nil)

// DefaultDLRURL is the delivery report URL template handed to the carrier by default.
const DefaultDLRURL = "{base}telgw/carriers/{name}/dlr?token={token}&messageId={messageId}&status=%d"

// DefaultConfig returns the carrier defaults (docs/CONFIG.md sms.carriers[].http); Name, URL,
// CallbackToken, PublicBase and Logger are the caller's.
func DefaultConfig() Config {
	return Config{Method: http.MethodGet, ContentType: "application/x-www-form-urlencoded", DLRURL: DefaultDLRURL, Timeout: 10 * time.Second}
}

// Validate reports every problem with the carrier settings, keys as docs/CONFIG.md names them
// under sms.carriers[].http ("url", "callbackToken"). Pure: no DNS, cfg is not modified.
func (cfg Config) Validate() error {
	var errs []error
	if cfg.Name == "" {
		errs = append(errs, errors.New("name: required"))
	}
	if u, err := url.Parse(strings.NewReplacer("{", "", "}", "").Replace(cfg.URL)); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		errs = append(errs, fmt.Errorf("url: %q is not an http(s) URL template", cfg.URL))
	}
	if m := strings.ToUpper(cfg.Method); m != "" && m != http.MethodGet && m != http.MethodPost {
		errs = append(errs, fmt.Errorf("method: %q is not GET or POST", cfg.Method))
	}
	if cfg.CallbackToken == "" {
		errs = append(errs, errors.New("callbackToken: required"))
	}
	return errors.Join(errs...)
}

// New validates cfg and builds the carrier; unset fields take DefaultConfig's values.
func New(cfg Config) (*Carrier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("http carrier %q: %w", cfg.Name, err)
	}
	d := DefaultConfig()
	cfg.Method = cmp.Or(strings.ToUpper(cfg.Method), d.Method)
	cfg.ContentType = cmp.Or(cfg.ContentType, d.ContentType)
	cfg.DLRURL = cmp.Or(cfg.DLRURL, d.DLRURL)
	if cfg.PublicBase == nil {
		cfg.PublicBase = func() string { return "http://127.0.0.1:8080/" }
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = d.Timeout
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Carrier{cfg: cfg, log: cfg.Logger.With("carrier", cfg.Name), ready: make(chan struct{})}, nil
}

// Name implements sms.Carrier.
func (c *Carrier) Name() string { return c.cfg.Name }

// Run hands the callbacks ServeHTTP takes to h until ctx ends (sms.Carrier). The HTTP carrier
// holds no connection of its own: submits are requests made by Submit.
func (c *Carrier) Run(ctx context.Context, h sms.CarrierHandler) error {
	if h == nil {
		return fmt.Errorf("http carrier %q: no handler", c.cfg.Name)
	}
	c.once.Do(func() { c.h = h; close(c.ready) })
	<-ctx.Done()
	return nil
}

// handler waits (briefly) for Run to hand over the handler: callbacks may arrive as soon as
// the HTTP edge listens, a moment before the carriers run.
func (c *Carrier) handler(ctx context.Context) sms.CarrierHandler {
	t := time.NewTimer(readyWait)
	defer t.Stop()
	select {
	case <-c.ready:
		return c.h
	case <-ctx.Done():
	case <-t.C:
	}
	return nil
}

// carrierID is the id telgw records for a message sent over HTTP: its own message id, which
// the DLR callback carries back.
func carrierID(messageID string) string { return "tg-" + messageID }

func jsonEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func (c *Carrier) render(tmpl string, msg sms.Outbound, escape func(string) string) string {
	mask := "0"
	if msg.DeliveryReport {
		mask = "3"
	}
	dlr := strings.NewReplacer("{base}", c.cfg.PublicBase(), "{name}", url.PathEscape(c.cfg.Name),
		"{token}", url.QueryEscape(c.cfg.CallbackToken), "{messageId}", url.QueryEscape(msg.MessageID)).Replace(c.cfg.DLRURL)
	return strings.NewReplacer(
		"{from}", escape(msg.From), "{to}", escape(msg.To),
		"{fromDigits}", escape(strings.TrimPrefix(msg.From, "+")), "{toDigits}", escape(strings.TrimPrefix(msg.To, "+")),
		"{text}", escape(msg.Text), "{messageId}", escape(msg.MessageID), "{dlrUrl}", escape(dlr), "{dlrMask}", mask,
	).Replace(tmpl)
}

// Submit implements sms.Carrier. 2xx is accepted; 429, 5xx and network errors are
// temporary; other statuses permanent.
func (c *Carrier) Submit(ctx context.Context, msg sms.Outbound) (sms.SubmitResult, error) {
	u := c.render(c.cfg.URL, msg, url.QueryEscape)
	var body io.Reader
	if c.cfg.Method == http.MethodPost {
		esc := url.QueryEscape
		if strings.Contains(c.cfg.ContentType, "json") {
			esc = jsonEscape
		}
		body = strings.NewReader(c.render(c.cfg.Body, msg, esc))
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, c.cfg.Method, u, body)
	if err != nil {
		return sms.SubmitResult{}, &sms.SubmitError{Code: 0, Reason: err.Error()}
	}
	if body != nil {
		req.Header.Set("Content-Type", c.cfg.ContentType)
	}
	for k, v := range c.cfg.Headers {
		req.Header.Set(k, v)
	}
	if c.cfg.Username != "" {
		req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
	}
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		return sms.SubmitResult{}, &sms.SubmitError{Temporary: true, Reason: err.Error()}
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 == 2 {
		return sms.SubmitResult{CarrierIDs: []string{carrierID(msg.MessageID)}, Segments: 1}, nil
	}
	temp := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
	return sms.SubmitResult{}, &sms.SubmitError{Code: uint32(resp.StatusCode), Temporary: temp,
		Reason: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(rb)))}
}

// kannelState maps a Kannel DLR type (%d) to a message state: 1 delivered to phone, 2
// non-delivered to phone, 4 queued on SMSC, 8 delivered to SMSC, 16 non-delivered to SMSC.
func kannelState(v int) receipt.State {
	switch {
	case v&1 != 0:
		return receipt.StateDelivered
	case v&2 != 0:
		return receipt.StateUndeliverable
	case v&16 != 0:
		return receipt.StateRejected
	case v&8 != 0:
		return receipt.StateAccepted
	case v&4 != 0:
		return receipt.StateEnroute
	}
	return receipt.StateUnknown
}

// textState maps a word ("delivered", "DELIVRD", "failed", …) to a message state.
func textState(s string) receipt.State {
	switch strings.ToLower(s) {
	case "delivered", "delivrd", "delivered_to_handset":
		return receipt.StateDelivered
	case "failed", "undeliv", "undelivered", "undeliverable":
		return receipt.StateUndeliverable
	case "rejected", "rejectd":
		return receipt.StateRejected
	case "expired":
		return receipt.StateExpired
	case "accepted", "acceptd", "sent", "queued", "enroute":
		return receipt.StateAccepted
	}
	return receipt.StateUnknown
}

// ServeHTTP serves the carrier's callbacks under its prefix:
//
//	/dlr?token=&messageId=&status=N   (Kannel DLR type) or &state=delivered|failed|…[&err=]
//	/inbound?token=&from=&to=&text=   (Kannel sms-service get-url with %p %P %a)
//
// Parameters may come in the query or a form body. 200 means recorded; 500 asks the carrier
// to retry.
func (c *Carrier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.Form.Get("token")), []byte(c.cfg.CallbackToken)) != 1 {
		http.Error(w, "bad token", http.StatusForbidden)
		return
	}
	h := c.handler(r.Context())
	if h == nil {
		http.Error(w, "not running yet; try again", http.StatusServiceUnavailable)
		return
	}
	var err error
	switch {
	case strings.HasSuffix(r.URL.Path, "/dlr"):
		id := r.Form.Get("messageId")
		if id == "" {
			http.Error(w, "messageId is required", http.StatusBadRequest)
			return
		}
		st := textState(r.Form.Get("state"))
		if v, perr := strconv.Atoi(r.Form.Get("status")); perr == nil {
			st = kannelState(v)
		}
		err = h.HandleReceipt(r.Context(), sms.Receipt{Carrier: c.cfg.Name, ReceivedAt: time.Now(),
			Receipt: receipt.Receipt{ID: carrierID(id), State: st, Err: r.Form.Get("err"), Submitted: -1, Delivered: -1}})
	case strings.HasSuffix(r.URL.Path, "/inbound"):
		from, to := r.Form.Get("from"), r.Form.Get("to")
		if from == "" || to == "" {
			http.Error(w, "from and to are required", http.StatusBadRequest)
			return
		}
		err = h.HandleInbound(r.Context(), sms.Inbound{Carrier: c.cfg.Name, From: plus(from), To: plus(to),
			Text: r.Form.Get("text"), Segments: 1, ReceivedAt: time.Now()})
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		c.log.Error("carrier callback failed", "path", r.URL.Path, "err", err)
		http.Error(w, "try again", http.StatusInternalServerError)
		return
	}
	_, _ = io.WriteString(w, "OK\n")
}

// plus makes an 11-digit NANP or any 8–15 digit number E.164 ("+" prefix); others pass.
func plus(s string) string {
	s = strings.TrimSpace(s)
	d := strings.TrimPrefix(s, "+")
	if d != "" && strings.Trim(d, "0123456789") == "" && len(d) >= 8 && len(d) <= 15 {
		return "+" + d
	}
	return s
}
