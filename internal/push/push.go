// Package push wakes WebRTC users' apps for incoming calls when they have no live SIP
// registration: it keeps device tokens per identity and sends through pluggable providers (FCM
// HTTP v1, APNs). A provider's "this token is dead" answer removes the token.
package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telgw/telgw/internal/problem"
)

// Platform names a push provider.
type Platform string

// The supported platforms.
const (
	FCM  Platform = "fcm"
	APNs Platform = "apns"
)

// Device is a registered device token.
type Device struct {
	Identity  string
	Platform  Platform
	Token     string
	CreatedAt time.Time
}

// Store persists device tokens.
type Store interface {
	// PushDeviceUpsert registers (or re-assigns) a token.
	PushDeviceUpsert(ctx context.Context, d Device) error
	// PushDeviceDelete removes a token of an identity; problem.ErrNotFound when absent.
	PushDeviceDelete(ctx context.Context, identity string, platform Platform, token string) error
	// PushDevicesFor lists an identity's tokens.
	PushDevicesFor(ctx context.Context, identity string) ([]Device, error)
}

// Notification is an incoming-call wake-up.
type Notification struct {
	// CallID identifies the call (the app shows it and may fetch details).
	CallID string
	// From and To are E.164 numbers.
	From, To string
	// TTL is how long the provider may hold the message. Default 30s.
	TTL time.Duration
}

// ErrUnregistered is what a Provider returns when the token is no longer valid (FCM
// UNREGISTERED/404, APNs 410): the token is removed.
var ErrUnregistered = errors.New("push token unregistered")

// Provider sends one notification to one device token.
type Provider interface {
	Send(ctx context.Context, token string, n Notification) error
}

// Service registers devices and fans notifications out to them.
type Service struct {
	store     Store
	providers map[Platform]Provider
	log       *slog.Logger
	sent      *prometheus.CounterVec
}

// New returns a Service; providers may be empty (then nothing is sent, tokens still register).
func New(s Store, providers map[Platform]Provider, log *slog.Logger, reg prometheus.Registerer) *Service {
	svc := &Service{store: s, providers: providers, log: log,
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telgw_push_notifications_total",
			Help: "Push notifications by platform and outcome."}, []string{"platform", "outcome"})}
	if reg != nil {
		reg.MustRegister(svc.sent)
	}
	return svc
}

// ParsePlatform validates a platform name.
func ParsePlatform(s string) (Platform, error) {
	switch Platform(s) {
	case FCM, APNs:
		return Platform(s), nil
	}
	return "", problem.Invalid("platform", "%q is not fcm or apns", s)
}

// Register adds a device token for identity.
func (s *Service) Register(ctx context.Context, identity string, p Platform, token string) error {
	if token == "" || len(token) > 4096 {
		return problem.Invalid("token", "must be 1–4096 characters")
	}
	return s.store.PushDeviceUpsert(ctx, Device{Identity: identity, Platform: p, Token: token, CreatedAt: time.Now().UTC()})
}

// Unregister removes a device token of identity.
func (s *Service) Unregister(ctx context.Context, identity string, p Platform, token string) error {
	if err := s.store.PushDeviceDelete(ctx, identity, p, token); err != nil {
		if errors.Is(err, problem.ErrNotFound) {
			return problem.NotFound("token", "device token not registered")
		}
		return err
	}
	return nil
}

// Devices lists an identity's device tokens.
func (s *Service) Devices(ctx context.Context, identity string) ([]Device, error) {
	return s.store.PushDevicesFor(ctx, identity)
}

// Notify sends n to every device of identity and reports how many accepted it.
func (s *Service) Notify(ctx context.Context, identity string, n Notification) (int, error) {
	if n.TTL == 0 {
		n.TTL = 30 * time.Second
	}
	devs, err := s.store.PushDevicesFor(ctx, identity)
	if err != nil {
		return 0, fmt.Errorf("devices of %s: %w", identity, err)
	}
	ok := 0
	for _, d := range devs {
		p := s.providers[d.Platform]
		if p == nil {
			s.sent.WithLabelValues(string(d.Platform), "no_provider").Inc()
			continue
		}
		err := p.Send(ctx, d.Token, n)
		switch {
		case err == nil:
			ok++
			s.sent.WithLabelValues(string(d.Platform), "sent").Inc()
		case errors.Is(err, ErrUnregistered):
			s.sent.WithLabelValues(string(d.Platform), "unregistered").Inc()
			_ = s.store.PushDeviceDelete(ctx, d.Identity, d.Platform, d.Token)
			s.log.Info("push token unregistered; removed", "platform", d.Platform, "identity", identity)
		default:
			s.sent.WithLabelValues(string(d.Platform), "failed").Inc()
			s.log.Warn("push failed", "platform", d.Platform, "identity", identity, "err", err)
		}
	}
	return ok, nil
}
