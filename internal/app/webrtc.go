package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"net"
	"time"

	"github.com/telgw/telgw/internal/bridge/webrtc"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/push"
	"github.com/telgw/telgw/internal/registrar"
	"github.com/telgw/telgw/internal/sip"
	"github.com/telgw/telgw/internal/sipws"
	"github.com/telgw/telgw/internal/web"
)

// setupWebRTC prepares what WebRTC users need before the SIP service is built: the registrar
// (token authentication, location service), the WebRTC media engine and the number lookup for
// caller ID. setupSIP passes a.Users to the SIP service; mountWebRTC then serves SIP over
// WebSocket at /sip/ws, the softphone at /phone and its ICE servers at /phone/ice.
func (a *App) setupWebRTC(_ context.Context) error {
	wc := a.Config.SIP.WebRTC
	eng, err := webrtc.NewEngine(wc.EngineConfig(), a.Log.With("component", "webrtc"), a.Registry)
	if err != nil {
		return err
	}
	// Digest nonces are signed with a secret derived from a stored one (the TURN secret, which
	// access-key rotation leaves alone) and bound to this node, whose memory tracks the
	// nonce-counts used (RFC 7616 §3.4.5): another node's nonce is stale, answered with a new
	// challenge, so a replay cannot slip through on a node that did not see the first use.
	nonceSecret := func() []byte {
		m := hmac.New(sha256.New, []byte(a.Keys.Current().TURNSecret))
		m.Write([]byte("telgw sip digest nonce"))
		return m.Sum(nil)
	}()
	loc := registrar.NewLocation(a.Registry)
	auth := registrar.NewAuthenticator(a.Identity, nonceSecret)
	auth.SetNonceTTL(a.Config.SIP.DigestNonceTTL)
	reg := &registrar.Registrar{Auth: auth, Location: loc, Log: a.Log.With("component", "registrar"),
		MaxDevices: wc.MaxDevicesPerUser, MaxContacts: wc.MaxContactsPerRegister}
	// Revoking a user's tokens or deleting the user drops its devices' registrations here at
	// once; other nodes drop theirs when a call would ring them (Registrar.Live).
	a.Identity.OnRevoke(loc.RemoveAll)
	a.runners = append(a.runners, func(ctx context.Context) error { return loc.Sweep(ctx, 30*time.Second) })
	a.Users = &sip.Users{
		Registrar: reg,
		Engine:    eng,
		Number: func(ctx context.Context, user string) (string, error) {
			return a.Numbers.UserNumber(ctx, user)
		},
		Notify: func(ctx context.Context, user, callID, from, to string) {
			if a.Push == nil {
				return
			}
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if _, err := a.Push.Notify(ctx, user, push.Notification{CallID: callID, From: from, To: to}); err != nil {
				a.Log.Warn("push notification failed", "call_id", callID, "err", err)
			}
		},
	}
	return nil
}

// mountWebRTC serves SIP over WebSocket (RFC 7118) on the HTTP listener and the softphone.
func (a *App) mountWebRTC(_ context.Context) error {
	if a.SIP == nil || a.Users == nil {
		return nil
	}
	ws := sipws.NewListener(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	r := a.API.Router()
	r.Handle("/sip/ws", ws)
	svc := a.SIP
	a.runners = append(a.runners, func(ctx context.Context) error {
		go func() { <-ctx.Done(); _ = ws.Close() }()
		return svc.ServeWS(ws)
	})
	a.closers = append(a.closers, func() { _ = ws.Close() })
	page := web.Handler()
	r.Handle("/phone", page)
	r.Handle("/phone/*", page)
	r.Handle("/phone/ice", web.ICEHandler(a.Identity, a.iceServers, a.Log.With("component", "web")))
	r.Handle("/phone/status", web.StatusHandler(a.Identity, a.phoneStatus, a.Log.With("component", "web")))
	return nil
}

// phoneStatus tells the softphone what stands in its user's way: no number assigned (no
// caller ID, nothing rings it), no SIP trunk (calls to phone numbers fail) or none up.
func (a *App) phoneStatus(ctx context.Context, user string) (web.Status, error) {
	var st web.Status
	n, err := a.Numbers.UserNumber(ctx, user)
	switch {
	case err == nil:
		st.Number = n
	case problem.KindOf(err) == problem.KindNotFound:
		st.Problems = append(st.Problems, web.StatusProblem{Code: "NoNumberAssigned",
			Message: "no phone number is assigned to this user, so calls to phone numbers have no caller ID and no number rings it (operator: telgw numbers assign NUMBER USER)"})
	default:
		return st, err
	}
	trunks := a.SIP.Admin().Trunks()
	up := 0
	for _, t := range trunks {
		if t.Up {
			up++
		}
	}
	switch {
	case len(trunks) == 0:
		st.Problems = append(st.Problems, web.StatusProblem{Code: "NoOutboundRoute",
			Message: "no SIP trunk is configured (sip.trunks), so calls to phone numbers fail"})
	case up == 0:
		st.Problems = append(st.Problems, web.StatusProblem{Code: "NoTrunkUp",
			Message: "no SIP trunk answers its health checks, so calls to phone numbers may fail"})
	}
	return st, nil
}

// iceServers gives a user the embedded TURN server's URLs with a fresh credential (when TURN
// is on; otherwise none: host candidates suffice when telgw has a public address).
func (a *App) iceServers(_ context.Context, user string) ([]web.ICEServer, time.Time, error) {
	if a.TURN == nil {
		return nil, time.Time{}, nil
	}
	cred := a.TURN.Issue(user, 0, time.Now()) // turn.credentialTTL
	return []web.ICEServer{{URLs: a.TURN.URLs(), Username: cred.Username, Credential: cred.Password}}, cred.ExpiresOn, nil
}
