package main

import (
	"context"
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/telgw/telgw/internal/app"
	"github.com/telgw/telgw/internal/keys"
)

func newKeysCmd(e *cliEnv) *cobra.Command {
	var asJSON bool
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the access keys and connection strings",
		Example: `  telgw keys show
  telgw keys show --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withRing(cmd.Context(), func(ring *keys.Ring, endpoint string) error {
				k := ring.Current()
				pinned := e.cfg.AccessKey != ""
				if asJSON {
					return printJSON(e.stdout, map[string]any{
						"primaryKey": k.AccessKey(keys.PrimaryKey), "secondaryKey": k.AccessKey(keys.SecondaryKey),
						"primaryConnectionString":   k.ConnectionString(endpoint, keys.PrimaryKey),
						"secondaryConnectionString": k.ConnectionString(endpoint, keys.SecondaryKey),
						"primaryPinned":             pinned,
					})
				}
				fmt.Fprintf(e.stdout, "primary:   %s\nsecondary: %s\nprimary connection string:   %s\nsecondary connection string: %s\n",
					k.AccessKey(keys.PrimaryKey), k.AccessKey(keys.SecondaryKey),
					k.ConnectionString(endpoint, keys.PrimaryKey), k.ConnectionString(endpoint, keys.SecondaryKey))
				if pinned {
					fmt.Fprintln(e.stdout, "(primary is pinned by TELGW_ACCESS_KEY)")
				}
				return nil
			})
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	rotate := &cobra.Command{
		Use:       "rotate primary|secondary",
		Short:     "Replace one access key",
		Long:      "Replace the primary or the secondary access key; running nodes pick it up within 30s.",
		Example:   `  telgw keys rotate secondary`,
		ValidArgs: []string{"primary", "secondary"},
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 || (args[0] != "primary" && args[0] != "secondary") {
				return usageError("rotate needs primary or secondary")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withRing(cmd.Context(), func(ring *keys.Ring, _ string) error {
				v, err := ring.Rotate(cmd.Context(), keys.Which(args[0]))
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "new %s key: %s\nrunning nodes pick it up within 30s\n", args[0], v)
				return nil
			})
		},
	}
	return group(&cobra.Command{Use: "keys", Short: "Print or replace the ACS access keys"}, show, rotate)
}

// withRing opens the store and the key ring and calls f with the ACS endpoint clients use.
func (e *cliEnv) withRing(ctx context.Context, f func(*keys.Ring, string) error) error {
	db, err := app.OpenStore(ctx, e.cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	ring, err := keys.NewRing(ctx, db, e.cfg.AccessKey, e.cfg.Identity.ResourceID)
	if err != nil {
		return err
	}
	endpoint := e.cfg.HTTP.PublicURL
	if endpoint == "" {
		host, port, _ := net.SplitHostPort(e.cfg.HTTP.Addr)
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		scheme := "http"
		if e.cfg.HTTP.TLSCert != "" {
			scheme = "https"
		}
		endpoint = scheme + "://" + net.JoinHostPort(host, port) + "/"
	}
	return f(ring, endpoint)
}
