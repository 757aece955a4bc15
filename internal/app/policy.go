package app

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/policy"
	"github.com/telgw/telgw/internal/stir"
)

// setupPolicy builds the fraud policy: the configured policy, replaced by the one stored with
// PUT /telgw/policy (shared by every node, reloaded every policy.refresh); its events go to
// the webhooks once setupSMS has built the dispatcher. It also serves /telgw/policy.
func (a *App) setupPolicy(ctx context.Context) error {
	eng, err := policy.New(a.Config.Policy.ServiceConfig(), a.DB, a.Log.With("component", "policy"))
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	if err := eng.Load(ctx); err != nil {
		return err
	}
	a.Policy = eng
	a.PolicyEvents = &events.PolicyEvents{Jobs: a.DB, Logger: a.Log.With("component", "policy")}
	refresh := a.Config.Policy.Refresh
	a.runners = append(a.runners, func(ctx context.Context) error { return eng.Run(ctx, refresh) })
	a.API.MountPolicy(eng)
	return nil
}

// stir builds the STIR/SHAKEN signer and verifier of sip.stir (nil when off). The verifier
// fetches x5u certificates through the webhook guard (webhooks.allowPrivate, allowCIDRs), so
// an Identity header cannot make telgw reach its own network.
func (a *App) stir() (*stir.Signer, *stir.Verifier, error) {
	c := a.Config.SIP.STIR
	var signer *stir.Signer
	var verifier *stir.Verifier
	if c.Signing() {
		key, err := os.ReadFile(c.KeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("sip.stir.keyFile: %w", err)
		}
		cert, err := os.ReadFile(c.CertFile)
		if err != nil {
			return nil, nil, fmt.Errorf("sip.stir.certFile: %w", err)
		}
		if signer, err = stir.NewSigner(stir.SignerConfig{Key: key, Cert: cert, CertURL: c.CertURL, OrigID: c.OrigID}); err != nil {
			return nil, nil, fmt.Errorf("sip.stir: %w", err)
		}
	}
	if c.TrustRootsFile != "" {
		b, err := os.ReadFile(c.TrustRootsFile)
		if err != nil {
			return nil, nil, fmt.Errorf("sip.stir.trustRootsFile: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(b) {
			return nil, nil, fmt.Errorf("sip.stir.trustRootsFile: %s holds no PEM certificate", c.TrustRootsFile)
		}
		guard, err := a.webhookGuard()
		if err != nil {
			return nil, nil, err
		}
		timeout := c.FetchTimeout
		if timeout <= 0 {
			timeout = 2 * time.Second
		}
		if verifier, err = stir.NewVerifier(stir.VerifierConfig{Roots: roots, Client: guard.Client(timeout), AllowHTTP: c.AllowHTTP,
			FetchTimeout: timeout, CacheTTL: c.CacheTTL}); err != nil {
			return nil, nil, err
		}
	}
	return signer, verifier, nil
}
