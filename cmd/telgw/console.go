package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/telgw/telgw/internal/app"
	"github.com/telgw/telgw/internal/console"
	"github.com/telgw/telgw/internal/keys"
)

// runConsole is `telgw console link`: a single-use sign-in link to the web console, stored in
// the shared store (so it works on any node and across restarts) and valid for -ttl.
func runConsole(ctx context.Context, e *cliEnv, args []string) error {
	if len(args) == 0 || args[0] != "link" {
		return usageError("want link [-ttl 10m] [-url BASE]")
	}
	fs := flag.NewFlagSet("console link", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	ttl := fs.Duration("ttl", console.DefaultLinkTTL, "how long the link stays usable (at most 1h)")
	base := fs.String("url", "", "base URL of the console (default: http.publicURL, else the running node's listener)")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError(err.Error())
	}
	if *ttl <= 0 || *ttl > time.Hour {
		return usageError("-ttl must be between 1s and 1h")
	}
	db, err := app.OpenStore(ctx, e.cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	ring, err := keys.NewRing(ctx, db, e.cfg.AccessKey, e.cfg.Identity.ResourceID)
	if err != nil {
		return err
	}
	secret, err := console.IssueLink(ctx, db, console.KeyFingerprint(ring.Current().Primary), *ttl, time.Now())
	if err != nil {
		return err
	}
	u := *base
	if u == "" {
		u = consoleBase(e)
	}
	fmt.Fprintf(e.stdout, "%sconsole/link#%s\n", strings.TrimRight(u, "/")+"/", secret)
	fmt.Fprintf(e.stderr, "single use, valid for %s\n", *ttl)
	return nil
}

// consoleBase is where operators reach the console: http.publicURL, else the HTTP address the
// node in this data directory bound (listeners.json), else http.addr.
func consoleBase(e *cliEnv) string {
	if e.cfg.HTTP.PublicURL != "" {
		return e.cfg.HTTP.PublicURL
	}
	addr := e.cfg.HTTP.Addr
	if b, err := os.ReadFile(filepath.Join(e.cfg.DataDir, app.ListenersFile)); err == nil {
		var l app.Listeners
		if json.Unmarshal(b, &l) == nil && l.HTTP != "" {
			addr = l.HTTP
		}
	}
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "http"
	if e.cfg.HTTP.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/"
}
