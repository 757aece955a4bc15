package sip

import (
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// peerDialog is what telgw knows of one of a call's two dialogs, enough to tell the in-dialog
// requests of the peer on that leg from forged ones.
//
// RFC 3261 §12.2.2: a request telgw receives belongs to the dialog whose ID is its Call-ID, its
// To tag (telgw's, the local tag) and its From tag (the peer's, the remote tag). On the
// caller's leg telgw is the UAS: the local tag is the To tag of telgw's responses, the remote
// tag the caller's From tag. On the callee's leg telgw is the UAC: the local tag is the From
// tag of telgw's INVITE, the remote tag the To tag of the 2xx that established the dialog (of
// the winning branch when a call forks to a user's devices). Until that 2xx the remote tag is
// unknown and nothing from the callee matches.
//
// The source rule, strict but practical: the request must also come over the leg's transport
// from the leg's source IP (its port may differ: a peer may open a new TCP connection, sit
// behind a NAT that rebinds, or answer from another socket, RFC 3261 §18.2.1). Over UDP a request
// may also arrive by TCP from that IP, since RFC 3261 §18.1.1 moves large requests to TCP; the
// reverse is refused (UDP sources are the easier ones to forge). A leg to or from a carrier
// trunk also accepts any address of the trunk's allow-list (a carrier with several proxies).
// A WebSocket leg (RFC 7118) accepts only the same WebSocket connection. A request that fails
// any of this gets 481 and leaves the call untouched.
type peerDialog struct {
	callID, local, remote string
	transport             string     // udp, tcp, tls or ws (transportOf)
	src                   string     // the peer's ip:port the dialog was set up with
	addr                  netip.Addr // src's IP
	allow                 []netip.Prefix
}

// newPeerDialog records a dialog set up with the peer at src (a request's or response's
// Source) over transport; t is the trunk on that leg, if any.
func newPeerDialog(callID, local, remote, transport, src string, t *trunk) peerDialog {
	d := peerDialog{callID: callID, local: local, remote: remote, transport: transport, src: src}
	if ap, err := netip.ParseAddrPort(src); err == nil {
		d.addr = ap.Addr().Unmap()
	}
	if t != nil && transport != "ws" {
		d.allow = t.Allow
	}
	return d
}

// Reasons a request fails to match its dialog (label values of telgw_sip_dialog_mismatch_total).
const (
	mismatchTags   = "tags"
	mismatchSource = "source"
	mismatchGone   = "transferred"
)

// match reports why req does not belong to d ("" when it does); the source rule applies when
// source is set (Config.DialogSourceCheck).
func (d *peerDialog) match(req *sip.Request, source bool) string {
	local, remote := toTag(req.To()), fromTag(req.From())
	if d.local == "" || d.remote == "" || callID(req) != d.callID || local != d.local || remote != d.remote {
		return mismatchTags
	}
	if source && !d.fromPeer(req) {
		return mismatchSource
	}
	return ""
}

// fromPeer applies the source rule of peerDialog's doc comment.
func (d *peerDialog) fromPeer(req *sip.Request) bool {
	tp := transportOf(req)
	switch d.transport {
	case "ws":
		return tp == "ws" && req.Source() == d.src
	case "udp":
		if tp != "udp" && tp != "tcp" {
			return false
		}
	default:
		if tp != d.transport {
			return false
		}
	}
	src := srcAddr(req)
	if !src.IsValid() {
		return false
	}
	if src == d.addr {
		return true
	}
	for _, p := range d.allow {
		if p.Contains(src) {
			return true
		}
	}
	return false
}

// fromTag and toTag are the tag parameter of a From or To header ("" when there is none).
func fromTag(h *sip.FromHeader) string {
	if h == nil || h.Params == nil {
		return ""
	}
	v, _ := h.Params.Get("tag")
	return v
}

func toTag(h *sip.ToHeader) string {
	if h == nil || h.Params == nil {
		return ""
	}
	v, _ := h.Params.Get("tag")
	return v
}

// transportName is a transport as transportOf names it.
func transportName(tp string) string {
	switch strings.ToLower(tp) {
	case "tcp":
		return "tcp"
	case "tls":
		return "tls"
	case "ws", "wss":
		return "ws"
	}
	return "udp"
}

// setDialog records side's dialog (under c.mu: in-dialog requests read it from other
// goroutines).
func (c *call) setDialog(side int, d peerDialog) {
	c.mu.Lock()
	c.dlg[side] = d
	c.mu.Unlock()
}

// confirmB records the remote tag and source of the callee's 2xx (res, the answer to an INVITE
// sent over transport, on trunk t if any): from now on the callee's in-dialog requests match.
func (c *call) confirmB(res *sip.Response, transport string, t *trunk) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.dlg[1]
	c.dlg[1] = newPeerDialog(d.callID, d.local, toTag(res.To()), transportName(transport), res.Source(), t)
}

// match finds the call and leg of an in-dialog request: a request whose Call-ID is no call's
// gets 481; one that names a call but fails its dialog's match (tags or source) gets 481 too,
// is counted and leaves the call untouched. An ACK gets no response either way (RFC 3261 §17:
// it is no transaction of its own).
func (s *dialogs) match(req *sip.Request, tx sip.ServerTransaction) (callRef, bool) {
	ref, ok := s.table.lookup(callID(req))
	if ok {
		ref.c.mu.Lock()
		d := ref.c.dlg[ref.side]
		ref.c.mu.Unlock()
		why := d.match(req, s.sourceCheck)
		if why == "" && ref.side >= 2 && req.Method != sip.BYE {
			why = mismatchGone // a party that left by a transfer (or a group call's leg) may only hang up
		}
		if why == "" {
			return ref, true
		}
		s.m.dialogMismatch.WithLabelValues(string(req.Method), why).Inc()
		s.log.Debug("in-dialog request does not match its dialog", "call_id", callID(req), "method", string(req.Method),
			"src", req.Source(), "transport", transportOf(req), "reason", why)
	}
	if req.Method != sip.ACK {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
	}
	return callRef{}, false
}
