package main

import (
	"context"
	"fmt"
	"net"

	"github.com/telgw/telgw/internal/app"
	"github.com/telgw/telgw/internal/keys"
)

func runKeys(ctx context.Context, e *cliEnv, args []string) error {
	if len(args) == 0 {
		return usageError("want show or rotate primary|secondary")
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
	switch args[0] {
	case "show":
		k := ring.Current()
		fmt.Fprintf(e.stdout, "primary:   %s\nsecondary: %s\nprimary connection string:   %s\nsecondary connection string: %s\n",
			k.AccessKey(keys.PrimaryKey), k.AccessKey(keys.SecondaryKey),
			k.ConnectionString(endpoint, keys.PrimaryKey), k.ConnectionString(endpoint, keys.SecondaryKey))
		if e.cfg.AccessKey != "" {
			fmt.Fprintln(e.stdout, "(primary is pinned by TELGW_ACCESS_KEY)")
		}
		return nil
	case "rotate":
		if len(args) != 2 {
			return usageError("rotate needs primary or secondary")
		}
		v, err := ring.Rotate(ctx, keys.Which(args[1]))
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "new %s key: %s\nrunning nodes pick it up within 30s\n", args[1], v)
		return nil
	}
	return usageError(fmt.Sprintf("unknown keys subcommand %q", args[0]))
}
