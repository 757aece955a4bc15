package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/telgw/telgw/internal/app"
	"github.com/telgw/telgw/internal/buildinfo"
)

func newServeCmd(e *cliEnv) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway",
		Long: `Run the gateway: the ACS REST API and WebSocket edge on http.addr, SIP on sip.addr, SMPP and HTTP
SMS carriers, TURN, and the job runner, until SIGINT or SIGTERM. Migrates the store first.`,
		Example: `  TELGW_DATA_DIR=/var/lib/telgw telgw serve
  TELGW_CONFIG=/etc/telgw/telgw.yaml telgw serve`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			app.InstallLogger(e.log)
			app.TuneRuntime()
			a, err := app.New(ctx, e.cfg, e.log, buildinfo.Read(version, revision))
			if err != nil {
				return err
			}
			if err := a.Listen(); err != nil {
				a.Close()
				return err
			}
			fmt.Fprintf(e.stdout, "telgw %s listening on %s (store: %s)\n", version, a.Endpoint(), a.DB.Dialect())
			// The connection string carries the access key: print it once, when the key is new,
			// not into every start's log (journald, container logs).
			if a.Keys.Generated() {
				fmt.Fprintf(e.stdout, "new access key generated; connection string: %s\n", a.ConnectionString())
			}
			fmt.Fprintf(e.stdout, "connection string in %s (also: telgw keys show)\n", filepath.Join(e.cfg.DataDir, "connection-string"))
			return a.Run(ctx)
		},
	}
}

func newMigrateCmd(e *cliEnv) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply database migrations and exit",
		Long: `Apply the store's schema migrations (SQLite in the data dir, or TELGW_DATABASE_URL) and exit.
serve migrates too; run this first when several nodes share one PostgreSQL.`,
		Example: `  telgw migrate`,
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := app.OpenStore(cmd.Context(), e.cfg)
			if err != nil {
				return err
			}
			defer db.Close()
			v, err := db.MigrationVersion(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "migrated %s store to version %d\n", db.Dialect(), v)
			return nil
		},
	}
}

func newVersionCmd(e *cliEnv) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "version",
		Short: "Print the version and build information",
		Long: `Print the version (set at link time), the VCS revision and time the binary was built from, and
the Go version. The same labels are on the telgw_build_info metric.`,
		Example: `  telgw version
  telgw version --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(_ *cobra.Command, _ []string) error {
			bi := buildinfo.Read(version, revision)
			if asJSON {
				return printJSON(e.stdout, bi)
			}
			fmt.Fprintf(e.stdout, "telgw %s\n", bi.Version)
			if bi.Revision != "" {
				mod := ""
				if bi.Modified {
					mod = " (modified)"
				}
				fmt.Fprintf(e.stdout, "  revision %s%s\n", bi.Revision, mod)
			}
			if bi.Time != "" {
				fmt.Fprintf(e.stdout, "  built    %s\n", bi.Time)
			}
			_, err := fmt.Fprintf(e.stdout, "  go       %s %s\n", bi.GoVersion, bi.Platform)
			return err
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return markNoConfig(c)
}

func newHealthcheckCmd(e *cliEnv) *cobra.Command {
	var target string
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "healthcheck",
		Short: "Probe a running node's /healthz; exit 0 when it answers 200",
		Long: `Probe GET /healthz of the node at http.addr (or --url) and exit 0 when it answers 200, 1 otherwise.
It is the container HEALTHCHECK: distroless images have no curl. An unspecified listen address
(0.0.0.0, [::]) is probed on loopback. With http.tlsCert set it speaks HTTPS without verifying
the certificate: the probe sends nothing secret and only reads the status.`,
		Example: `  telgw healthcheck
  telgw healthcheck --url http://127.0.0.1:8080/healthz`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if target == "" {
				host, port, err := net.SplitHostPort(e.cfg.HTTP.Addr)
				if err != nil {
					return fmt.Errorf("http.addr %q: %w", e.cfg.HTTP.Addr, err)
				}
				if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
					host = "127.0.0.1"
				}
				scheme := "http"
				if e.cfg.HTTP.TLSCert != "" {
					scheme = "https"
				}
				target = scheme + "://" + net.JoinHostPort(host, port) + "/healthz"
			} else if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return usageError(fmt.Sprintf("--url %q: want an http or https URL", target))
			}
			return probe(cmd.Context(), e.stdout, target, timeout)
		},
	}
	c.Flags().StringVar(&target, "url", "", "URL to probe (default: /healthz on http.addr)")
	c.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up after this long")
	return c
}

// probe GETs target and fails unless it answers 200.
func probe(ctx context.Context, out io.Writer, target string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true} //nolint:gosec // liveness probe of the local node, see Long
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		return fmt.Errorf("unhealthy: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("unhealthy: %s answered %s", target, resp.Status)
	}
	_, err = fmt.Fprintf(out, "healthy: %s\n", target)
	return err
}
