package sip

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/bridge"
	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/sip/sdp"
)

// callConfig is the part of Config a call reads.
type callConfig struct {
	// Host is telgw's host in the URIs it writes (From, Contact).
	Host string
	// SessionExpires is the session timer telgw asks carriers for (RFC 4028).
	SessionExpires time.Duration
	// FailoverTimeout and RingTimeout bound an attempt without progress and the ringing.
	FailoverTimeout, RingTimeout time.Duration
	// Codecs are the codecs telgw relays, in preference order.
	Codecs []string
}

// callEnv is what a call uses of the SIP edge: its narrow dependencies, shared by every call
// (the B2BUA's call goroutines and the in-dialog handlers that act on calls), instead of the
// whole Service.
type callEnv struct {
	cfg     callConfig
	log     *slog.Logger
	m       *metrics
	dialogs map[string]*sipgo.DialogUA // by transport; filled in once the user agent is built
	relay   *bridge.Relay              // media ports (NewUDPLeg)
	media   calls.Media                // bridges legs
	table   *callTable
	trunks  *trunkTable // outbound routes (routeOut) and trunk slots
	cdrs    calls.CDRSink
	users   *Users            // WebRTC users (fork); nil when not served
	bots    *calls.Automation // Call Automation: calls to bot-routed numbers; nil: answered 480
	fraud   *fraudEnv         // policy, emergency route, STIR/SHAKEN (fraud.go, emergency.go)
	// mediaDeps play and listen on bot calls (botmedia.go); nil: media operations answer 400.
	mediaDeps *MediaDeps
}

// stop is cancelled when the service stops: calls hang up.
func (e *callEnv) stop() context.Context { return e.table.stop }

// parseOffer parses an SDP offer and keeps only the codecs telgw relays (RFC 3264 §5).
func (e *callEnv) parseOffer(body []byte) (*sdp.Session, error) {
	off, err := sdp.Parse(body)
	if err == nil {
		err = sdp.FilterOffer(off, e.cfg.Codecs)
	}
	return off, err
}

// answerReinvite answers a re-INVITE with body, echoing its session timer (RFC 4028 §9).
func (e *callEnv) answerReinvite(req *sip.Request, tx sip.ServerTransaction, body []byte) {
	res := sip.NewSDPResponseFromRequest(req, body)
	res.AppendHeader(&e.dialogs[transportOf(req)].ContactHDR)
	if se, _ := sessionExpires(req); se > 0 {
		res.AppendHeader(sip.NewHeader("Session-Expires", fmt.Sprintf("%d;refresher=uac", int(se.Seconds()))))
	}
	_ = tx.Respond(res)
}

// relayMedia is internal/bridge's Relay as the call domain's Media.
type relayMedia struct{ r *bridge.Relay }

// Bridge implements calls.Media.
func (m relayMedia) Bridge(a, b calls.MediaLeg) calls.MediaBridge { return m.r.Bridge(a, b) }

var _ calls.Media = relayMedia{}
