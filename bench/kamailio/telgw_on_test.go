//go:build telgwsip

package kamailio

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telgw/telgw/internal/bridge"
	"github.com/telgw/telgw/internal/sip"
)

// telgwRouter routes every number to the SIPp callee, as Kamailio's configuration does for
// the numbers it knows.
type telgwRouter struct{ uri string }

func (r telgwRouter) CallRoute(context.Context, string) (sip.Route, error) {
	return sip.SIPRoute{URI: r.uri}, nil
}

// startTelgw starts telgw's B2BUA in-process, configured like bench/sip does: the SIPp caller's
// address is a carrier trunk, calls go to the SIPp callee, media is anchored on 127.0.0.1
// (ports 22000–31999, next to rtpengine's), no per-source rate limit and no media timeout.
func startTelgw(t *testing.T, p Parties) (string, bool) {
	t.Helper()
	svc, err := sip.New(sip.Config{
		Addr: "127.0.0.1:0",
		Trunks: []sip.TrunkConfig{{Name: "carrier1", Address: p.CallerIP + ":5070",
			Allow: []netip.Prefix{netip.MustParsePrefix(p.CallerIP + "/32")}}},
		SourceRate: 1e6, SourceBurst: 1e6,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()})),
		Registerer: prometheus.NewRegistry(),
		Media:      bridge.Config{ListenIP: netip.MustParseAddr("127.0.0.1"), PortMin: 22000, PortMax: 31999, MediaTimeout: -1},
	}, sip.Deps{Router: telgwRouter{fmt.Sprintf("sip:pbx@%s", p.Callee())}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return svc.Addr().String(), true
}

// logLevel is error, or debug with TELGW_SIP_TEST_LOG set (as in internal/sip's tests).
func logLevel() slog.Level {
	if os.Getenv("TELGW_SIP_TEST_LOG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelError
}
