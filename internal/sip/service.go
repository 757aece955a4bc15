package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/bridge"
	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/policy"
	"github.com/telgw/telgw/internal/sip/digest"
	"github.com/telgw/telgw/internal/stir"
)

// Deps are what the Service consumes from other domains. Router is required. Store, when set,
// keeps the routing, credentials and CDRs and stands in for Credentials and CDRs left nil;
// without Credentials no customer endpoint can call out; without CDRs records are only logged.
type Deps struct {
	Router      Router
	Store       Store
	Credentials Credentials
	CDRs        CDRSink
	// Users, when set, serves WebRTC users: REGISTER, calls to numbers routed to a user and
	// calls out from a user's device (SIP over WebSocket, RFC 7118).
	Users *Users
	// Automation, when set, hands calls to bot-routed numbers to apps (Call Automation);
	// without it (or without its publisher) they are answered 480.
	Automation *calls.Automation
	// Media, when set, serves Call Automation's media operations on bot calls (play,
	// recognize DTMF, sendDtmfTones); without it they answer 400.
	Media *MediaDeps
	// Policy, when set, admits calls out (destinations, limits, kill switches); without it
	// every routable destination may be called without limit.
	Policy *policy.Engine
	// Events receives policy refusals and emergency calls (webhooks); nil: logged only.
	Events policy.Events
	// Signer, when set, signs calls out to trunks with an Identity header (STIR/SHAKEN).
	Signer *stir.Signer
	// Verifier, when set, verifies the Identity header of carriers' calls.
	Verifier *stir.Verifier
}

// Service is the SIP user agent: it owns the listeners and sipgo's stack and hands each request
// to the part that serves it:
//   - b2bua (call.go): new INVITEs from trunks and customer endpoints, turned into calls;
//   - userSide (users.go): WebRTC users' REGISTER, calls forked to their devices, their calls out;
//   - dialogs (indialog.go): in-dialog requests (ACK, BYE, re-INVITE, INFO) matched to their call;
//   - trunkTable (trunk.go, register.go): the trunks, their OPTIONS health and registrations;
//   - Admin (admin.go): routing, credentials, the call log and trunk status for the API.
type Service struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	ua    *sipgo.UserAgent
	srv   *sipgo.Server
	sc    *clients
	m     *metrics
	conns *connGuard     // caps and deadlines of TCP, TLS and WebSocket connections (conns.go)
	limit *sourceLimiter // the per-source flood limit

	udp     net.PacketConn
	tcp     net.Listener
	tls     net.Listener // SIP over TLS; nil: off
	tlsConf *tls.Config  // client side of TLS trunks

	table  *callTable
	trunks *trunkTable
	b2b    *b2bua
	users  *userSide
	dlg    *dialogs
	admin  *Admin

	closeOnce sync.Once
	draining  atomic.Bool // Drain was called (drain.go)
}

// clients are the sipgo client and dialog UAs telgw sends with, built with the user agent.
type clients struct {
	client  *sipgo.Client
	dialogs map[string]*sipgo.DialogUA // by transport
}

// clientFor is the client that sends out-of-dialog requests over transport: the TLS one carries
// the TLS port in Via.
func (c *clients) clientFor(transport string) *sipgo.Client {
	if d, ok := c.dialogs[strings.ToLower(transport)]; ok && strings.EqualFold(transport, "tls") {
		return d.Client
	}
	return c.client
}

// New builds the Service and binds its UDP and TCP listeners on cfg.Addr (so Addr with port 0
// picks a free port, reported by Addr()).
func New(cfg Config, deps Deps) (*Service, error) {
	cfg, err := cfg.provision(context.Background())
	if err != nil {
		return nil, fmt.Errorf("sip config: %w", err)
	}
	if deps.Router == nil {
		return nil, errors.New("sip: a Router is required")
	}
	if deps.Store != nil {
		if deps.Credentials == nil {
			deps.Credentials = deps.Store
		}
		if deps.CDRs == nil {
			deps.CDRs = deps.Store
		}
	}
	if cfg.Media.Logger == nil {
		cfg.Media.Logger = cfg.Logger
	}
	if cfg.Media.Registerer == nil {
		cfg.Media.Registerer = cfg.Registerer
	}
	relay, err := bridge.New(cfg.Media)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, deps: deps, log: cfg.Logger, sc: &clients{dialogs: map[string]*sipgo.DialogUA{}}, table: newCallTable(),
		limit: newSourceLimiter(cfg.SourceRate, cfg.SourceBurst)}
	if s.m, err = newMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	s.trunks = newTrunkTable(s.log, s.m, s.sc)
	s.trunks.set(cfg.Trunks, cfg.Routes)
	s.conns = newConnGuard(&s.cfg, s.log, s.m, s.trunks, s.table)
	env := &callEnv{log: s.log, m: s.m, dialogs: s.sc.dialogs, relay: relay, media: relayMedia{relay}, table: s.table,
		trunks: s.trunks, cdrs: deps.CDRs, users: deps.Users, bots: deps.Automation, mediaDeps: deps.Media,
		fraud: &fraudEnv{pol: deps.Policy, events: deps.Events, signer: deps.Signer, verifier: deps.Verifier, emergency: cfg.Emergency},
		cfg:   callConfig{Host: cfg.Host, SessionExpires: cfg.SessionExpires, FailoverTimeout: cfg.FailoverTimeout, RingTimeout: cfg.RingTimeout, Codecs: cfg.Codecs}}
	s.users = &userSide{callEnv: env}
	s.b2b = &b2bua{callEnv: env, router: deps.Router, creds: deps.Credentials, auth: digest.New(cfg.Realm, cfg.DigestNonceTTL),
		rejectUnknownSource: *cfg.RejectUnknownSource, users: s.users}
	s.dlg = &dialogs{callEnv: env, sourceCheck: *cfg.DialogSourceCheck, router: deps.Router}
	s.admin = &Admin{cfg: &s.cfg, deps: deps, trunks: s.trunks}
	if deps.Automation != nil {
		deps.Automation.SetDialer(s) // apps' calls (createCall) go out through the trunks
	}
	if s.udp, s.tcp, err = listenUDPTCP(cfg.Addr); err != nil {
		return nil, err
	}
	if s.tls, s.tlsConf, err = listenTLS(cfg.TLS); err != nil {
		_ = s.udp.Close()
		_ = s.tcp.Close()
		return nil, err
	}
	if err := s.buildUA(); err != nil {
		_ = s.udp.Close()
		_ = s.tcp.Close()
		if s.tls != nil {
			_ = s.tls.Close()
		}
		return nil, err
	}
	return s, nil
}

// listenUDPTCP binds UDP and TCP on the same address. With port 0 the UDP port is picked
// first and may be taken for TCP by someone else: then it tries another.
func listenUDPTCP(addr string) (net.PacketConn, net.Listener, error) {
	for try := 0; ; try++ {
		udp, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("sip: listen udp %s: %w", addr, err)
		}
		tcpAddr := udp.LocalAddr().String()
		tcp, err := net.Listen("tcp", tcpAddr)
		if err == nil {
			return udp, tcp, nil
		}
		_ = udp.Close()
		if portOf(addr) != 0 || try == 20 {
			return nil, nil, fmt.Errorf("sip: listen tcp %s: %w", tcpAddr, err)
		}
	}
}

func (s *Service) buildUA() error {
	var err error
	sl := s.log.With("component", "sipgo")
	s.ua, err = sipgo.NewUA(sipgo.WithUserAgent("telgw"), sipgo.WithUserAgentHostname(s.cfg.Host),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(sl)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(sl)), sipgo.WithUserAgenTLSConfig(s.tlsConf))
	if err != nil {
		return fmt.Errorf("sip: user agent: %w", err)
	}
	if s.srv, err = sipgo.NewServer(s.ua, sipgo.WithServerLogger(sl)); err != nil {
		return err
	}
	port := s.udp.LocalAddr().(*net.UDPAddr).Port
	client, err := sipgo.NewClient(s.ua, sipgo.WithClientHostname(s.cfg.Host), sipgo.WithClientPort(port), sipgo.WithClientLogger(sl))
	if err != nil {
		return err
	}
	s.sc.client = client
	for _, tp := range []string{"udp", "tcp"} {
		u := sip.Uri{User: "telgw", Host: s.cfg.Host, Port: port}
		if tp == "tcp" {
			u.UriParams = sip.NewParams()
			u.UriParams.Add("transport", "tcp")
		}
		s.sc.dialogs[tp] = &sipgo.DialogUA{Client: client, ContactHDR: sip.ContactHeader{Address: u}}
	}
	// RFC 7118 §5: a WebSocket client's Contact (often a .invalid host) is reachable only over
	// the connection it came in on, so in-dialog requests go to the request's source.
	wsURI := sip.Uri{User: "telgw", Host: s.cfg.Host, Port: port, UriParams: sip.NewParams()}
	wsURI.UriParams.Add("transport", "ws")
	s.sc.dialogs["ws"] = &sipgo.DialogUA{Client: client, ContactHDR: sip.ContactHeader{Address: wsURI}, RewriteContact: true}
	if s.tls != nil {
		if err := s.addTLSDialog(sipgo.WithClientLogger(sl)); err != nil {
			return err
		}
	}
	if err := s.addPeerDialog(port, sipgo.WithClientLogger(sl)); err != nil {
		return err
	}
	s.srv.OnRegister(s.guard(s.drainable(s.users.onRegister)))
	s.srv.OnInvite(s.guard(s.drainable(s.onInvite)))
	s.srv.OnAck(s.dlg.onAck)
	s.srv.OnBye(s.guard(s.dlg.onBye))
	s.srv.OnCancel(s.guard(onStrayCancel))
	s.srv.OnInfo(s.guard(s.dlg.onInfo))
	s.srv.OnRefer(s.guard(s.dlg.onRefer))
	s.srv.OnUpdate(s.guard(onUpdate))
	s.srv.OnOptions(s.guard(s.drainable(onOptions)))
	s.srv.OnNoRoute(s.guard(onUnknownMethod))
	return nil
}

// ServeWS serves SIP over WebSocket (RFC 7118) on connections l accepts, e.g. a
// sipws.Listener mounted on the HTTP server, until l is closed.
func (s *Service) ServeWS(l net.Listener) error {
	err := s.srv.ServeWS(s.conns.listener(s.users.dropBindingsOnClose(l), "ws"))
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Addr is the bound UDP (and TCP) address.
func (s *Service) Addr() netip.AddrPort {
	return s.udp.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Run serves SIP until ctx ends, then hangs up every call (BYE or CANCEL), waits for them and
// closes the listeners.
func (s *Service) Run(ctx context.Context) error {
	errc := make(chan error, 3)
	go func() { errc <- s.srv.ServeUDP(s.screenUDP(s.udp)) }()
	go func() { errc <- s.srv.ServeTCP(s.screenStream(s.conns.listener(s.tcp, "tcp"), "tcp")) }()
	if s.tls != nil {
		go func() { errc <- s.srv.ServeTLS(s.screenStream(s.conns.listener(s.tls, "tls"), "tls")) }()
	}
	kctx, kcancel := context.WithCancel(ctx)
	kdone := make(chan struct{})
	go func() { defer close(kdone); s.trunks.keepalive(kctx) }()
	s.log.Info("sip serving", "addr", s.Addr().String())
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	kcancel()
	<-kdone
	s.table.close()
	s.table.wait()
	s.release()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("sip serve: %w", err)
	}
	return nil
}

// Close releases the listeners (Run does it itself when it ends; Close is safe after it).
func (s *Service) Close() {
	s.table.close()
	s.release()
}

func (s *Service) release() {
	s.closeOnce.Do(func() {
		_ = s.udp.Close()
		_ = s.tcp.Close()
		if s.tls != nil {
			_ = s.tls.Close()
		}
		_ = s.srv.Close()
		_ = s.ua.Close()
	})
}

// ActiveCalls is the number of calls in progress.
func (s *Service) ActiveCalls() int { return s.table.active() }

// Admin is the management side of the service: routing, credentials, the call log and trunk
// status, for the REST API and the operator.
func (s *Service) Admin() *Admin { return s.admin }

func srcAddr(req *sip.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// guard applies the per-source flood limit to out-of-dialog requests (in-dialog ones belong to
// calls already admitted) and recovers from handler panics so one bad message cannot stop the
// stack.
func (s *Service) guard(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("sip handler panic", "call_id", callID(req), "err", fmt.Sprint(r))
				_ = tx.Respond(sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil))
			}
		}()
		tx = s.conns.watchWS(req, tx)
		// Out-of-dialog requests from anyone but a trunk count against sip.sourceRate. So do
		// in-dialog ones (a To tag) whose Call-ID is no call's: each would cost a 481, and with a
		// forged UDP source telgw would reflect them at whoever the source names. Requests of
		// calls in progress are never dropped here (a lost BYE keeps a call up); the dialog match
		// (dialog.go) decides about them.
		inDialog := false
		if to := req.To(); to != nil && to.Params.Has("tag") {
			_, inDialog = s.table.lookup(callID(req))
		}
		if !inDialog && !s.trunks.fromTrunk(req) && !s.limit.allow(srcAddr(req)) {
			s.m.dropped.WithLabelValues("rate").Inc()
			return
		}
		h(req, tx)
	}
}

func callID(req *sip.Request) string {
	if h := req.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

func respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
}

// supported are the option tags telgw understands in Require (RFC 3261 §20.32).
var supported = map[string]bool{"timer": true}

// allowed is telgw's Allow header value (RFC 3261 §20.5).
const allowed = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER"

// check applies the request checks RFC 3261 §8.2 asks of a UAS before it acts, in its order:
// method (§8.2.1, 405/501 elsewhere), Request-URI scheme (§8.2.2.1, 416), Require extensions
// (§8.2.2.3, 420), Content-Type (§8.2.3, 415); and Max-Forwards (§16.3 step 3, 483), which ends
// request loops through B2BUAs that do not share Via. It reports whether it responded.
func check(req *sip.Request, tx sip.ServerTransaction) bool {
	// RFC 3261 §8.1.1: To, From, CSeq, Call-ID, Max-Forwards and Via are mandatory (Max-Forwards
	// is tolerated missing, as most UAS do).
	if req.From() == nil || req.To() == nil || req.CSeq() == nil || req.CallID() == nil || req.Via() == nil {
		respond(tx, req, 400, "Bad Request")
		return true
	}
	if req.SipVersion != "SIP/2.0" {
		// The response speaks the version telgw supports, not the request's (RFC 3261 §8.2.1).
		res := sip.NewResponseFromRequest(req, 505, "Version Not Supported", nil)
		res.SipVersion = "SIP/2.0"
		_ = tx.Respond(res)
		return true
	}
	switch strings.ToLower(req.Recipient.Scheme) {
	case "sip", "sips", "tel":
	default:
		respond(tx, req, 416, "Unsupported URI Scheme")
		return true
	}
	var unsupported []string
	for _, h := range req.GetHeaders("Require") {
		for opt := range strings.SplitSeq(h.Value(), ",") {
			if opt = strings.TrimSpace(opt); opt != "" && !supported[strings.ToLower(opt)] {
				unsupported = append(unsupported, opt)
			}
		}
	}
	if len(unsupported) > 0 {
		respond(tx, req, 420, "Bad Extension", sip.NewHeader("Unsupported", strings.Join(unsupported, ", ")))
		return true
	}
	if len(req.Body()) > 0 && req.Method == sip.INVITE {
		ct := req.ContentType()
		if ct == nil || !strings.EqualFold(strings.TrimSpace(strings.Split(ct.Value(), ";")[0]), "application/sdp") {
			respond(tx, req, 415, "Unsupported Media Type", sip.NewHeader("Accept", "application/sdp"))
			return true
		}
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
		respond(tx, req, 483, "Too Many Hops")
		return true
	}
	return false
}

func onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if check(req, tx) {
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.AppendHeader(sip.NewHeader("Allow", allowed))
	res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	res.AppendHeader(sip.NewHeader("Supported", "timer"))
	_ = tx.Respond(res)
}

// onUnknownMethod answers methods telgw does not implement: 405 for ones RFC 3261 and its
// extensions define (with Allow, §8.2.1), 501 for the rest (§21.5.2).
func onUnknownMethod(req *sip.Request, tx sip.ServerTransaction) {
	switch req.Method {
	case sip.REGISTER, sip.SUBSCRIBE, sip.NOTIFY, sip.REFER, sip.MESSAGE, sip.PRACK, sip.PUBLISH:
		respond(tx, req, 405, "Method Not Allowed", sip.NewHeader("Allow", allowed))
	default:
		respond(tx, req, 501, "Not Implemented", sip.NewHeader("Allow", allowed))
	}
}

// onStrayCancel answers a CANCEL that matched no INVITE transaction (the transaction layer
// handles matching ones itself): 481 (RFC 3261 §9.2).
func onStrayCancel(req *sip.Request, tx sip.ServerTransaction) {
	respond(tx, req, 481, "Call/Transaction Does Not Exist")
}

func onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	respond(tx, req, 501, "Not Implemented", sip.NewHeader("Allow", allowed))
}

func hostOf(hostport string) string {
	h, _, _ := net.SplitHostPort(hostport)
	return h
}

func portOf(hostport string) int {
	_, p, _ := net.SplitHostPort(hostport)
	n, _ := strconv.Atoi(p)
	return n
}
