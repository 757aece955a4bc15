package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/telgw/telgw/internal/app"
	"github.com/telgw/telgw/internal/console"
	"github.com/telgw/telgw/internal/keys"
)

// newConsoleCmd is the `telgw console` group for the web console at /console/.
func newConsoleCmd(e *cliEnv) *cobra.Command {
	return group(&cobra.Command{
		Use:   "console",
		Short: "The web console at /console/",
	}, newConsoleLinkCmd(e))
}

// newConsoleLinkCmd is `telgw console link`: a single-use sign-in link to the web console,
// stored in the shared store (so it works on any node and across restarts) and valid for --ttl.
func newConsoleLinkCmd(e *cliEnv) *cobra.Command {
	var ttl time.Duration
	var base string
	c := &cobra.Command{
		Use:     "link",
		Short:   "Print a single-use sign-in link to the web console",
		Example: "  telgw console link --ttl 5m",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ttl <= 0 || ttl > time.Hour {
				return usageError("--ttl must be between 1s and 1h")
			}
			ctx := cmd.Context()
			db, err := app.OpenStore(ctx, e.cfg)
			if err != nil {
				return err
			}
			defer db.Close()
			ring, err := keys.NewRing(ctx, db, e.cfg.AccessKey, e.cfg.Identity.ResourceID)
			if err != nil {
				return err
			}
			secret, err := console.IssueLink(ctx, db, console.KeyFingerprint(ring.Current().Primary), ttl, time.Now())
			if err != nil {
				return err
			}
			u := base
			if u == "" {
				u = consoleBase(e)
			}
			fmt.Fprintf(e.stdout, "%sconsole/link#%s\n", strings.TrimRight(u, "/")+"/", secret)
			fmt.Fprintf(e.stderr, "single use, valid for %s\n", ttl)
			return nil
		},
	}
	c.Flags().DurationVar(&ttl, "ttl", console.DefaultLinkTTL, "how long the link stays usable (at most 1h)")
	c.Flags().StringVar(&base, "url", "", "base URL of the console (default: http.publicURL, else the running node's listener)")
	return c
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
