package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/telgw/telgw/internal/app"
	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/e164"
	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/problem"
)

// runCalls prints call detail records: `telgw calls [list] [-number N] [-limit N]`.
func runCalls(ctx context.Context, e *cliEnv, args []string) error {
	if len(args) > 0 && args[0] == "list" {
		args = args[1:]
	}
	fs := flag.NewFlagSet("calls", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var p calls.CDRListParams
	var num string
	fs.StringVar(&num, "number", "", "only calls from or to this number")
	fs.IntVar(&p.Top, "limit", 50, "how many, newest first")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	if num != "" {
		n, err := e164.Normalize(num)
		if err != nil {
			return usageError(err.Error())
		}
		p.Number = n
	}
	db, err := app.OpenStore(ctx, e.cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	cdrs, err := calls.CDRLog{Store: db}.List(ctx, p)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "START\tDIRECTION\tFROM\tTO\tTRUNK\tDISPOSITION\tCODE\tQ850\tDURATION\tENDED BY\tCALL-ID")
	for _, c := range cdrs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", c.Start.Format(time.RFC3339), c.Direction, c.From, c.To, c.Trunk,
			c.Disposition, c.SIPCode, c.Q850, c.Duration().Round(time.Second), c.EndedBy, c.CallID)
	}
	return tw.Flush()
}

// runSIP manages customers' SIP endpoint credentials: `telgw sip credentials list`,
// `telgw sip credentials add USER PASSWORD +1… [+1…]`, `telgw sip credentials delete USER`.
func runSIP(ctx context.Context, e *cliEnv, args []string) error {
	if len(args) < 2 || args[0] != "credentials" {
		return usageError("want credentials list | add USER PASSWORD NUMBER… | delete USER")
	}
	db, err := app.OpenStore(ctx, e.cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	// The same service as the REST edge (/telgw/sip/credentials), with the configured realm, so
	// a credential made here authenticates against the SIP edge's challenges.
	creds := calls.CredentialService{Store: db, Realm: e.cfg.SIP.Realm,
		Router: calls.NumberRouter{Numbers: numbers.New(app.NumbersConfig(e.cfg, db, e.log))}}
	switch args[1] {
	case "list":
		list, err := creds.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USERNAME\tNUMBERS\tCREATED")
		for _, c := range list {
			fmt.Fprintf(tw, "%s\t%v\t%s\n", c.Username, c.Numbers, c.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	case "add":
		if len(args) < 5 {
			return usageError("want credentials add USER PASSWORD NUMBER…")
		}
		c, err := creds.Create(ctx, args[2], args[3], args[4:])
		if problem.KindOf(err) == problem.KindInvalid {
			return usageError(err.Error())
		}
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "credential %s for %v\n", c.Username, c.Numbers)
		return err
	case "delete":
		if len(args) != 3 {
			return usageError("want credentials delete USER")
		}
		return creds.Delete(ctx, args[2])
	}
	return usageError("want credentials list | add | delete")
}
