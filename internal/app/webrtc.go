package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"net"
	"time"

	"github.com/telgw/telgw/internal/bridge/webrtc"
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
	eng, err := webrtc.NewEngine(webrtc.Config{
		PortMin: wc.PortMin, PortMax: wc.PortMax, PublicIPs: wc.PublicIPs, IPs: wc.IPs,
		IncludeLoopback: wc.IncludeLoopback, ConnectTimeout: wc.ConnectTimeout, MediaTimeout: wc.MediaTimeout,
	}, a.Log.With("component", "webrtc"), a.Registry)
	if err != nil {
		return err
	}
	// Digest nonces are stateless, signed with a secret every node derives from the same stored
	// secret (the TURN secret, which access-key rotation leaves alone), so a nonce one node
	// issued is good on every other.
	nonceSecret := func() []byte {
		m := hmac.New(sha256.New, []byte(a.Keys.Current().TURNSecret))
		m.Write([]byte("telgw sip digest nonce"))
		return m.Sum(nil)
	}()
	loc := registrar.NewLocation(a.Registry)
	reg := &registrar.Registrar{Auth: registrar.NewAuthenticator(a.Identity, nonceSecret), Location: loc,
		Log: a.Log.With("component", "registrar")}
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
	return nil
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
