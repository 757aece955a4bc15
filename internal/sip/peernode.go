package sip

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/e164"
	"github.com/telgw/telgw/internal/sip/sdp"
)

// Node-to-node calls (several telgw nodes on one store). A carrier's call to a user reaches
// some node B; the user's devices may be connected to other nodes (their WebSockets end
// there). B forks the call to its own devices as always and, for each other node A holding
// devices of the user, sends one INVITE to A's internal SIP address with the carrier's offer
// anchored on a media port of B's. A checks the request is a node's, then forks it to its own
// devices only (never on to other nodes) and answers B like any callee: B's first 2xx wins,
// whichever node it came from. Media flows carrier ⇄ B ⇄ A ⇄ browser, each node anchoring its
// own legs (its own address in each SDP).
//
// A node-to-node INVITE carries peerHeader:
//
//	X-Telgw-Node: v1;node=<sender id>;ts=<unix seconds>;user=<base64url identity>;sig=<base64url MAC>
//
// where MAC = HMAC-SHA256(key, "v1\n" node "\n" ts "\n" user "\n" Call-ID "\n" From user "\n"
// To user "\n" Request-URI user "\n" base64url(SHA-256(body)) "\n") with a key every node
// derives from the shared access key (cluster.PeerKey). A request with the header and a bad, stale (more than MaxSkew away) or
// replayed (a Call-ID already seen) signature is refused with 403; so is any header on a node
// that is not in a cluster. Outsiders lack the key; a captured INVITE cannot be replayed.
const peerHeader = "X-Telgw-Node"

// peerTransport names the dialog UA of node-to-node calls (Service.addPeerDialog).
const peerTransport = "peer"

// addPeerDialog adds the dialog UA node-to-node calls use: UDP like the "udp" one, but every
// request of its dialogs (INVITE, ACK, BYE, re-INVITE) leaves from the SIP listener's own
// socket, so the other node sees this node's listening address as the source. (The default
// client sends from an ephemeral socket whose source address the kernel picks; on a host
// with several addresses that is not the one the peer dialog was set up with, RFC 3261
// §18.2.2 responses then go astray and the peer's dialog source check refuses the BYE.)
func (s *Service) addPeerDialog(port int, opts ...sipgo.ClientOption) error {
	opts = append([]sipgo.ClientOption{sipgo.WithClientHostname(s.cfg.Host), sipgo.WithClientPort(port),
		sipgo.WithClientConnectionAddr(s.udp.LocalAddr().String())}, opts...)
	client, err := sipgo.NewClient(s.ua, opts...)
	if err != nil {
		return err
	}
	s.sc.dialogs[peerTransport] = &sipgo.DialogUA{Client: client, ContactHDR: s.sc.dialogs["udp"].ContactHDR}
	return nil
}

// PeerNode is another node of the cluster holding devices of a user.
type PeerNode struct {
	// ID is the node's cluster id; Addr its internal SIP address (host:port, UDP).
	ID, Addr string
}

// Peers connects this node's user side to the other nodes of a cluster (Users.Peers).
type Peers struct {
	// Self is this node's cluster id.
	Self string
	// Holders returns the other live nodes holding devices of user.
	Holders func(ctx context.Context, user string) ([]PeerNode, error)
	// Keys returns the node-to-node keys: the first signs, any verifies (so a key rotation
	// does not break calls between nodes that refreshed at different moments).
	Keys func() [][]byte
	// MaxSkew is how far a node-to-node INVITE's timestamp may be from this node's clock.
	// Default 30s.
	MaxSkew time.Duration

	now  func() time.Time
	mu   sync.Mutex
	seen map[string]time.Time // Call-IDs of accepted node-to-node INVITEs, until they are stale
	// pruned is when seen was last swept of stale Call-IDs (at most once a second, not per INVITE).
	pruned time.Time
}

var (
	errPeerMissing   = errors.New("no node-to-node signature")
	errPeerMalformed = errors.New("malformed node-to-node signature")
	errPeerStale     = errors.New("stale node-to-node signature")
	errPeerBad       = errors.New("bad node-to-node signature")
	errPeerReplay    = errors.New("replayed node-to-node INVITE")
)

func (p *Peers) clock() time.Time {
	if p.now != nil {
		return p.now()
	}
	return time.Now()
}

func (p *Peers) skew() time.Duration {
	if p.MaxSkew > 0 {
		return p.MaxSkew
	}
	return 30 * time.Second
}

// peerClaims is what a node-to-node header says.
type peerClaims struct {
	node, user string
	ts         int64
	sig        []byte
}

// parsePeerHeader reads a peerHeader value. Unknown parameters are refused: the format is ours.
func parsePeerHeader(v string) (peerClaims, error) {
	var pc peerClaims
	parts := strings.Split(strings.TrimSpace(v), ";")
	if len(parts) != 5 || strings.TrimSpace(parts[0]) != "v1" || len(v) > 1024 {
		return pc, errPeerMalformed
	}
	got := map[string]bool{}
	for _, kv := range parts[1:] {
		k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || got[k] || val == "" {
			return pc, errPeerMalformed
		}
		got[k] = true
		var err error
		switch k {
		case "node":
			pc.node = val
		case "ts":
			pc.ts, err = strconv.ParseInt(val, 10, 64)
		case "user":
			var b []byte
			b, err = base64.RawURLEncoding.DecodeString(val)
			pc.user = string(b)
		case "sig":
			pc.sig, err = base64.RawURLEncoding.DecodeString(val)
		default:
			return pc, errPeerMalformed
		}
		if err != nil {
			return pc, errPeerMalformed
		}
	}
	if pc.user == "" || pc.node == "" || len(pc.sig) != sha256.Size {
		return pc, errPeerMalformed
	}
	return pc, nil
}

func peerMAC(key []byte, node string, ts int64, user string, req *sip.Request) []byte {
	m := hmac.New(sha256.New, key)
	body := sha256.Sum256(req.Body())
	for _, s := range []string{"v1", node, strconv.FormatInt(ts, 10), user, callID(req), req.From().Address.User, req.To().Address.User, req.Recipient.User,
		base64.RawURLEncoding.EncodeToString(body[:])} {
		m.Write([]byte(s))
		m.Write([]byte{'\n'})
	}
	return m.Sum(nil)
}

// sign adds peerHeader to a node-to-node INVITE for user (its From, To, Call-ID and
// Request-URI set).
func (p *Peers) sign(req *sip.Request, user string) {
	keys := p.Keys()
	if len(keys) == 0 {
		return
	}
	ts := p.clock().Unix()
	mac := peerMAC(keys[0], p.Self, ts, user, req)
	req.AppendHeader(sip.NewHeader(peerHeader, "v1;node="+p.Self+";ts="+strconv.FormatInt(ts, 10)+
		";user="+base64.RawURLEncoding.EncodeToString([]byte(user))+";sig="+base64.RawURLEncoding.EncodeToString(mac)))
}

// verify checks a node-to-node INVITE and returns the user it is for and the sending node.
func (p *Peers) verify(req *sip.Request) (user, node string, err error) {
	hs := req.GetHeaders(peerHeader)
	if len(hs) == 0 {
		return "", "", errPeerMissing
	}
	if len(hs) > 1 {
		return "", "", errPeerMalformed
	}
	pc, err := parsePeerHeader(hs[0].Value())
	if err != nil {
		return "", "", err
	}
	now := p.clock()
	at := time.Unix(pc.ts, 0)
	if d := now.Sub(at); d > p.skew() || d < -p.skew() {
		return "", "", errPeerStale
	}
	ok := false
	for _, k := range p.Keys() {
		if len(k) > 0 && hmac.Equal(peerMAC(k, pc.node, pc.ts, pc.user, req), pc.sig) {
			ok = true
			break
		}
	}
	if !ok {
		return "", "", errPeerBad
	}
	// RFC 3261 §17.2.3: retransmissions of the INVITE match its server transaction and never
	// reach here, so a Call-ID seen twice is a replay.
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen = map[string]time.Time{}
	}
	if now.Sub(p.pruned) >= time.Second {
		p.pruned = now
		for id, t := range p.seen {
			if now.Sub(t) > 2*p.skew() {
				delete(p.seen, id)
			}
		}
	}
	if _, dup := p.seen[callID(req)]; dup {
		return "", "", errPeerReplay
	}
	p.seen[callID(req)] = now
	return pc.user, pc.node, nil
}

// fromPeerNode reports whether req claims to be a node-to-node INVITE.
func fromPeerNode(req *sip.Request) bool { return req.GetHeader(peerHeader) != nil }

// peerInbound serves a node-to-node INVITE: after checking it, the call is forked to this
// node's devices of the user only. The node that received the carrier's call writes the CDR.
func (s *userSide) peerInbound(c *call, req *sip.Request, tx sip.ServerTransaction, caller calls.Leg) {
	c.cc = calls.NewCall(time.Now(), caller)
	c.cc.SetFrom(caller.Participant.ID)
	c.cc.SetDirection(Inbound)
	to := req.Recipient.User
	if n, err := e164.Normalize(to); err == nil {
		to = n
	}
	c.cc.SetTo(to)
	var p *Peers
	if s.users != nil {
		p = s.users.Peers
	}
	if p == nil {
		s.log.Info("node-to-node INVITE, but this node is in no cluster", "call_id", c.id, "src", req.Source())
		c.reject(req, tx, 403, "Forbidden", nil)
		return
	}
	user, node, err := p.verify(req)
	if err != nil {
		s.log.Warn("node-to-node INVITE refused", "call_id", c.id, "src", req.Source(), "err", err)
		c.reject(req, tx, 403, "Forbidden", nil)
		return
	}
	c.fromPeer = true
	s.log.Debug("node-to-node call", "call_id", c.id, "node", node, "user", user)
	c.cc.SetRoute(UserRoute{User: user})
	s.inbound(c, req, tx, user)
}

// peerHolders are the other nodes holding devices of user (none outside a cluster, for a call
// that came from another node, or when the store does not answer: then only local devices ring).
func (s *userSide) peerHolders(ctx context.Context, c *call, user string) []PeerNode {
	if c.fromPeer || s.users == nil || s.users.Peers == nil || s.users.Peers.Holders == nil {
		return nil
	}
	ns, err := s.users.Peers.Holders(ctx, user)
	if err != nil {
		s.log.Warn("cluster lookup failed; ringing this node's devices only", "call_id", c.id, "user", user, "err", err)
		return nil
	}
	return ns
}

// invitePeer starts one node-to-node branch of a fork: the carrier's offer (c.peerOffer)
// anchored on a media port of this node's, to node n for user.
func (c *call) invitePeer(ctx context.Context, req *sip.Request, n PeerNode, user string) (*branch, context.Context, error) {
	s := c.env
	udp, err := s.relay.NewUDPLeg()
	if err != nil {
		return nil, nil, err
	}
	b := &branch{peer: &n, udp: udp, origin: c.origin[1]}
	cp, _ := sdp.Parse(c.peerOffer.Marshal())
	sdp.Anchor(cp, udp.Local().Addr(), int(udp.Local().Port()), &b.origin)
	b.body = cp.Marshal()
	host, port := hostOf(n.Addr), portOf(n.Addr)
	inv := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: c.cc.To(), Host: host, Port: port})
	inv.SetTransport("UDP")
	from := sip.FromHeader{DisplayName: req.From().DisplayName, Address: sip.Uri{Scheme: "sip", User: c.cc.From(), Host: s.cfg.Host}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	inv.AppendHeader(&from)
	inv.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: c.cc.To(), Host: host, Port: port}, Params: sip.NewParams()})
	mf := sip.MaxForwardsHeader(70)
	if h := req.MaxForwards(); h != nil {
		mf = sip.MaxForwardsHeader(h.Val() - 1)
	}
	inv.AppendHeader(&mf)
	inv.AppendHeader(sip.NewHeader("Allow", allowed))
	inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	inv.SetBody(b.body)
	// sipgo adds Call-ID at send time only when missing: set it now, the signature covers it.
	cid := sip.CallIDHeader(sip.GenerateTagN(24) + "@" + s.cfg.Host)
	inv.AppendHeader(&cid)
	s.users.Peers.sign(inv, user)
	bctx, bcancel := context.WithCancelCause(ctx)
	b.cancel = bcancel
	dlg, err := s.dialogs[peerTransport].WriteInvite(bctx, inv)
	if err != nil {
		bcancel(nil)
		_ = udp.Close()
		return nil, nil, err
	}
	b.dialog = dlg
	return b, bctx, nil
}

// peerAnswered completes a call whose node-to-node branch won: to this node the other node is
// a plain SIP callee (RTP on legB), so the call goes on as a SIP-to-SIP call.
func (s *userSide) peerAnswered(c *call, win *branch, offer *sdp.Session, user string) {
	c.legB = win.udp
	c.mu.Lock()
	c.origin[1] = win.origin
	c.lastTo[1] = win.body
	c.b, c.bID = win.dialog, win.dialog.InviteRequest.CallID().Value()
	c.dlg[1] = peerDialog{callID: c.bID, local: fromTag(win.dialog.InviteRequest.From())}
	c.mu.Unlock()
	c.confirmB(win.res, "udp", nil)
	c.cc.SetCallee(calls.Leg{ID: c.bID, Kind: calls.LegWebRTC, Participant: calls.User(user)})
	s.table.register(c.bID, c, 1)
	c.br = s.media.Bridge(c.legA, c.legB)
	defer c.br.Close()
	c.established(win.res, offer)
}

// closeMedia closes a losing branch's media leg, WebRTC or node-to-node.
func (b *branch) closeMedia() {
	if b.leg != nil {
		_ = b.leg.Close()
	}
	if b.udp != nil {
		_ = b.udp.Close()
	}
}
