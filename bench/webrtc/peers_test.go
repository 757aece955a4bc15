package webrtc

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http/httptest"
	"net/netip"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/telgw/telgw/bench/internal/inproc"
	"github.com/telgw/telgw/internal/bridge"
	"github.com/telgw/telgw/internal/bridge/webrtc"
	"github.com/telgw/telgw/internal/identity"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/registrar"
	"github.com/telgw/telgw/internal/sip"
	"github.com/telgw/telgw/internal/sipws"
)

const (
	telgwIP   = "127.0.0.1"
	carrierIP = "127.0.0.2"
)

// Port ranges, kept below Linux's ephemeral range (32768-60999) so that the WebSocket
// connections and SIPp's sockets never take them.
const (
	relayPortMin, relayPortMax   = 20000, 27999 // telgw's RTP relay (carrier side)
	telgwICEMin, telgwICEMax     = 10000, 14999 // telgw's WebRTC legs
	deviceICEMin, deviceICEMax   = 15000, 19999 // the devices' WebRTC legs
	sippMediaPort                = 28000        // SIPp's RTP (on carrierIP)
	numberBase                   = 14155560000  // number i is +1415556000i (E.164)
	userPrefix, tokenPrefix      = "8:acs:bench_", "tok-"
	registerExpires              = 3600
	deviceAnswerTimeout          = 10 * time.Second
	deviceRegisterTimeout        = 10 * time.Second
	labelKey, telgwSide, devSide = "side", "telgw", "device"
)

func numberOf(i int) string { return "+" + strconv.Itoa(numberBase+i) }
func userOf(i int) string   { return userPrefix + strconv.Itoa(i) }

// tokens stands in for the identity service: token tok-i is user 8:acs:bench_i with the voip
// scope.
type tokens struct{}

func (tokens) Verify(_ context.Context, tok string) (identity.Claims, error) {
	if len(tok) > len(tokenPrefix) && tok[:len(tokenPrefix)] == tokenPrefix {
		if i, err := strconv.Atoi(tok[len(tokenPrefix):]); err == nil {
			return identity.Claims{Identity: userOf(i), Scopes: []identity.Scope{identity.ScopeVoIP}}, nil
		}
	}
	return identity.Claims{}, problem.Unauthorized("invalid token")
}

func (tokens) DigestHA1s(context.Context, string, string) ([]string, error) { return nil, nil }

// router is the numbers domain: number i routes to user i.
type router struct{}

func (router) CallRoute(_ context.Context, e164 string) (sip.Route, error) {
	n, err := strconv.Atoi(e164)
	if err != nil || n < numberBase || n >= numberBase+1_000_000 {
		return nil, sip.ErrUnknownNumber
	}
	return sip.UserRoute{User: userOf(n - numberBase)}, nil
}

// node is telgw under test: the B2BUA with its relay, WebRTC engine and WebSocket endpoint.
// Everything it starts runs under the pprof label side=telgw, so a CPU profile tells its
// share apart from the devices'.
type node struct {
	svc  *sip.Service
	reg  *prometheus.Registry
	ws   string // host:port of the SIP WebSocket
	cdrs *cdrs
}

// cdrs collects telgw's call detail records: their times give the setup delay as telgw sees
// it (INVITE in → 200 out), at a finer grain than SIPp's.
type cdrs struct {
	mu   sync.Mutex
	list []sip.CDR
}

func (c *cdrs) CDRInsert(_ context.Context, r sip.CDR) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = append(c.list, r)
	return nil
}

// take returns the CDRs written since the last call.
func (c *cdrs) take() []sip.CDR {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.list
	c.list = nil
	return l
}

func startNode(t *testing.T) *node {
	t.Helper()
	n := &node{reg: prometheus.NewRegistry(), cdrs: &cdrs{}}
	log := inproc.Logger("BENCH_WEBRTC_LOG") // e.g. info: telgw's call log
	var l *sipws.Listener
	var srv *httptest.Server
	var err error
	pprof.Do(context.Background(), pprof.Labels(labelKey, telgwSide), func(context.Context) {
		var eng *webrtc.Engine
		eng, err = webrtc.NewEngine(webrtc.Config{IncludeLoopback: true, IPs: []string{telgwIP},
			PortMin: telgwICEMin, PortMax: telgwICEMax}, log, n.reg)
		if err != nil {
			return
		}
		users := &sip.Users{
			Registrar: &registrar.Registrar{Auth: registrar.NewAuthenticator(tokens{}, []byte("bench")), Location: registrar.NewLocation(nil)},
			Engine:    eng,
			Number:    func(context.Context, string) (string, error) { return numberOf(0), nil },
		}
		n.svc, err = sip.New(sip.Config{
			Addr:       telgwIP + ":0",
			Trunks:     []sip.TrunkConfig{{Name: "carrier1", Address: carrierIP + ":5070", Allow: []netip.Prefix{netip.MustParsePrefix(carrierIP + "/32")}}},
			SourceRate: 1e6, SourceBurst: 1e6, MaxConnsPerIP: -1, Logger: log, Registerer: n.reg, // every device is on one address
			Media: bridge.Config{ListenIP: netip.MustParseAddr(telgwIP), PortMin: relayPortMin, PortMax: relayPortMax},
		}, sip.Deps{Router: router{}, Users: users, CDRs: n.cdrs})
		if err != nil {
			return
		}
		inproc.Run(t, n.svc)
		l = sipws.NewListener(&net.TCPAddr{IP: net.ParseIP(telgwIP)})
		srv = httptest.NewServer(l)
		wsDone := make(chan error, 1)
		go func() { wsDone <- n.svc.ServeWS(l) }()
		t.Cleanup(func() {
			_ = l.Close()
			<-wsDone
			srv.CloseClientConnections()
			srv.Close()
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	n.ws = srv.Listener.Addr().String()
	return n
}

// sum adds up the counter (or gauge) name in reg, over the label values matching want.
// devStats are what the devices saw, summed over all of them.
type devStats struct {
	invites  atomic.Int64 // INVITEs received
	answered atomic.Int64 // 200s sent
	failed   atomic.Int64 // INVITEs the device could not answer (Answer or RespondSDP error)
	received atomic.Int64 // RTP packets received from telgw
	gaps     atomic.Int64 // RTP sequence numbers skipped (RFC 3550 §6.4.1, no reordering)

	mu        sync.Mutex
	firstRTP  []time.Duration // INVITE received → first RTP packet received, per call
	firstMiss atomic.Int64    // calls whose leg closed before any RTP arrived
}

func (s *devStats) reset() {
	s.invites.Store(0)
	s.answered.Store(0)
	s.failed.Store(0)
	s.received.Store(0)
	s.gaps.Store(0)
	s.firstMiss.Store(0)
	s.mu.Lock()
	s.firstRTP = nil
	s.mu.Unlock()
}

// device is a WebRTC user's app: a sipgo UA over its own WebSocket and a pion WebRTC leg (from
// the devices' shared engine) that echoes the audio it receives, like SIPp's -rtp_echo.
type device struct {
	id    int
	ws    string
	eng   *webrtc.Engine
	st    *devStats
	ua    *sipgo.UserAgent
	srv   *sipgo.Server
	cli   *sipgo.Client
	dlgUA *sipgo.DialogUA
	cur   atomic.Pointer[sipgo.DialogServerSession]

	mu   sync.Mutex
	legs []*webrtc.Leg
}

// newDevice builds device i; call it under the side=device pprof label, as the goroutines the
// UA and its connection start inherit it.
func newDevice(i int, ws string, eng *webrtc.Engine, st *devStats) (*device, error) {
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("pion-device"))
	if err != nil {
		return nil, err
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		return nil, err
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname(telgwIP))
	if err != nil {
		return nil, err
	}
	d := &device{id: i, ws: ws, eng: eng, st: st, ua: ua, srv: srv, cli: cli}
	contact := sipmsg.ContactHeader{Address: sipmsg.Uri{Scheme: "sip", User: fmt.Sprintf("dev%d", i), Host: "df7jal23ls0d.invalid", UriParams: sipmsg.NewParams()}}
	contact.Address.UriParams.Add("transport", "ws")
	d.dlgUA = &sipgo.DialogUA{Client: cli, ContactHDR: contact, RewriteContact: true}
	srv.OnInvite(d.onInvite)
	srv.OnAck(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		if ds := d.cur.Load(); ds != nil {
			_ = ds.ReadAck(req, tx)
		}
	})
	srv.OnBye(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		if ds := d.cur.Load(); ds == nil || ds.ReadBye(req, tx) != nil {
			_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 200, "OK", nil))
		}
		d.closeLegs()
	})
	return d, nil
}

func (d *device) onInvite(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	got := time.Now()
	d.st.invites.Add(1)
	ds, err := d.dlgUA.ReadInvite(req, tx)
	if err != nil {
		d.st.failed.Add(1)
		return
	}
	d.cur.Store(ds)
	_ = ds.Respond(180, "Ringing", nil)
	ctx, cancel := context.WithTimeout(context.Background(), deviceAnswerTimeout)
	defer cancel()
	leg, ans, err := d.eng.Answer(ctx, string(req.Body()), webrtc.LegOptions{})
	if err != nil {
		d.st.failed.Add(1)
		_ = ds.Respond(488, "Not Acceptable Here", nil)
		return
	}
	d.mu.Lock()
	d.legs = append(d.legs, leg)
	d.mu.Unlock()
	go d.echo(leg, got)
	if err := ds.RespondSDP([]byte(ans)); err != nil {
		d.st.failed.Add(1)
		_ = leg.Close()
		return
	}
	d.st.answered.Add(1)
}

// echo sends back every RTP packet the leg receives, counting them and their sequence gaps,
// and records how long after the INVITE the first one arrived.
func (d *device) echo(leg *webrtc.Leg, invited time.Time) {
	buf := make([]byte, 1500)
	last := -1
	var received, gaps int64
	defer func() {
		d.st.received.Add(received)
		d.st.gaps.Add(gaps)
		if last < 0 {
			d.st.firstMiss.Add(1)
		}
	}()
	for {
		n, err := leg.ReadRTP(buf)
		if err != nil {
			return
		}
		seq := binary.BigEndian.Uint16(buf[2:4])
		if last < 0 {
			d.st.mu.Lock()
			d.st.firstRTP = append(d.st.firstRTP, time.Since(invited))
			d.st.mu.Unlock()
		} else if gap := seq - uint16(last); gap > 1 && gap < 1000 {
			gaps += int64(gap - 1)
		}
		last = int(seq)
		received++
		_ = leg.WriteRTP(buf[:n])
	}
}

func (d *device) closeLegs() {
	d.mu.Lock()
	legs := d.legs
	d.legs = nil
	d.mu.Unlock()
	for _, l := range legs {
		_ = l.Close()
	}
}

func (d *device) close() {
	d.closeLegs()
	_ = d.srv.Close()
	_ = d.ua.Close()
}

// register sends REGISTER over the WebSocket with the token as Bearer (RFC 8898).
func (d *device) register() error {
	req := sipmsg.NewRequest(sipmsg.REGISTER, sipmsg.Uri{Scheme: "sip", Host: telgwIP})
	req.SetDestination(d.ws)
	req.SetTransport("WS")
	aor := "<sip:" + userOf(d.id) + "@" + telgwIP + ">"
	req.AppendHeader(sipmsg.NewHeader("To", aor))
	req.AppendHeader(sipmsg.NewHeader("From", aor+";tag="+sipmsg.GenerateTagN(8)))
	req.AppendHeader(sipmsg.NewHeader("Contact", "<"+d.dlgUA.ContactHDR.Address.String()+">;expires="+strconv.Itoa(registerExpires)))
	req.AppendHeader(sipmsg.NewHeader("Authorization", "Bearer "+tokenPrefix+strconv.Itoa(d.id)))
	ctx, cancel := context.WithTimeout(context.Background(), deviceRegisterTimeout)
	defer cancel()
	res, err := d.cli.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("register device %d: %w", d.id, err)
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("register device %d: %d %s", d.id, res.StatusCode, res.Reason)
	}
	return nil
}

// startDevices registers n devices (device i as user i) under the side=device label, with
// one shared WebRTC engine whose metrics go to reg.
func startDevices(t *testing.T, n int, ws string, reg *prometheus.Registry) *devStats {
	t.Helper()
	st := &devStats{}
	var err error
	pprof.Do(context.Background(), pprof.Labels(labelKey, devSide), func(context.Context) {
		var eng *webrtc.Engine
		eng, err = webrtc.NewEngine(webrtc.Config{IncludeLoopback: true, IPs: []string{telgwIP},
			PortMin: deviceICEMin, PortMax: deviceICEMax}, nil, reg)
		if err != nil {
			return
		}
		for i := range n {
			var d *device
			if d, err = newDevice(i, ws, eng, st); err != nil {
				return
			}
			t.Cleanup(d.close)
			if err = d.register(); err != nil {
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}
