package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/telgw/telgw/internal/app"
	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/sip"
	"github.com/telgw/telgw/internal/sip/number"
)

// runCalls prints call detail records: `telgw calls [list] [-number N] [-limit N]`.
func runCalls(ctx context.Context, e *cliEnv, args []string) error {
	if len(args) > 0 && args[0] == "list" {
		args = args[1:]
	}
	fs := flag.NewFlagSet("calls", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var p sip.CDRListParams
	var num string
	fs.StringVar(&num, "number", "", "only calls from or to this number")
	fs.IntVar(&p.Top, "limit", 50, "how many, newest first")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	if num != "" {
		n, err := number.Normalize(num)
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
	cdrs, err := db.CDRList(ctx, p)
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
	switch args[1] {
	case "list":
		list, err := db.SIPCredentialList(ctx)
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
		var nums []string
		for _, n := range args[4:] {
			en, err := number.Normalize(n)
			if err != nil {
				return usageError(err.Error())
			}
			if _, err := db.NumberRouting(ctx, numbers.E164(en)); err != nil {
				return fmt.Errorf("%s is not a purchased number: %w", en, err)
			}
			nums = append(nums, en)
		}
		if len(args[3]) < 8 {
			return usageError("the password needs at least 8 characters")
		}
		// The realm is the SIP service's default (sip.Config.Realm).
		c := sip.NewCredential("telgw", args[2], args[3], nums)
		if err := db.SIPCredentialPut(ctx, c); err != nil {
			return err
		}
		_, err := fmt.Fprintf(e.stdout, "credential %s for %v\n", c.Username, c.Numbers)
		return err
	case "delete":
		if len(args) != 3 {
			return usageError("want credentials delete USER")
		}
		return db.SIPCredentialDelete(ctx, args[2])
	}
	return usageError("want credentials list | add | delete")
}
