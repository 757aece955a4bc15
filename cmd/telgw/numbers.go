package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/telgw/telgw/internal/app"
	"github.com/telgw/telgw/internal/numbers"
)

// newNumbersCmd manages the inventory straight in the store, so it works while nodes serve.
func newNumbersCmd(e *cliEnv) *cobra.Command {
	// open gives the numbers service on the configured store and its closer.
	open := func(ctx context.Context) (*numbers.Service, func(), error) {
		db, err := app.OpenStore(ctx, e.cfg)
		if err != nil {
			return nil, nil, err
		}
		return numbers.New(app.NumbersConfig(e.cfg, db, e.log)), func() { _ = db.Close() }, nil
	}
	// one runs f on the service for a command with a fixed number of arguments.
	one := func(f func(ctx context.Context, svc *numbers.Service, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			svc, done, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			return f(cmd.Context(), svc, args)
		}
	}

	var lp numbers.ListParams
	var state string
	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the inventory",
		Example: `  telgw numbers list --state available --area-code 425
  telgw numbers list --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: one(func(ctx context.Context, svc *numbers.Service, _ []string) error {
			lp.State = numbers.State(state)
			ns, err := svc.List(ctx, lp)
			if err != nil {
				return err
			}
			return printNumbers(e.stdout, ns, listJSON)
		}),
	}
	list.Flags().StringVar(&state, "state", "", "available, held, purchased or quarantined")
	list.Flags().StringVar(&lp.AreaCode, "area-code", "", "area code (NPA)")
	list.Flags().IntVar(&lp.Top, "top", 100, "how many")
	list.Flags().IntVar(&lp.Skip, "skip", 0, "skip this many first")
	list.Flags().BoolVar(&listJSON, "json", false, "print one JSON object per line")
	_ = list.RegisterFlagCompletionFunc("state", cobra.FixedCompletions([]string{"available", "held", "purchased", "quarantined"}, cobra.ShellCompDirectiveNoFileComp))

	show := &cobra.Command{
		Use:     "show E164",
		Short:   "Print one number as JSON",
		Example: `  telgw numbers show +14252000100`,
		Args:    exactArgs(1, "E164"),
		RunE: one(func(ctx context.Context, svc *numbers.Service, args []string) error {
			n, err := svc.Get(ctx, args[0])
			if err != nil {
				return err
			}
			return printNumbers(e.stdout, []numbers.Number{n}, true)
		}),
	}
	show.Flags().Bool("json", true, "print JSON (always)")

	withdraw := &cobra.Command{
		Use:     "withdraw E164",
		Short:   "Remove an unsold number from the inventory",
		Example: `  telgw numbers withdraw +14252000199`,
		Args:    exactArgs(1, "E164"),
		RunE: one(func(ctx context.Context, svc *numbers.Service, args []string) error {
			if err := svc.Withdraw(ctx, args[0]); err != nil {
				return err
			}
			_, err := fmt.Fprintf(e.stdout, "withdrew %s\n", args[0])
			return err
		}),
	}
	route := &cobra.Command{
		Use:   "route E164 ROUTE",
		Short: "Set where a number's calls and SMS go",
		Long: `Set where a number's calls and SMS go. ROUTE is sip:URI (a SIP endpoint or PBX), user:8:acs:ID (a
communication user), bot:URL (an IncomingCall webhook), or "" for the default (Event Grid events).`,
		Example: `  telgw numbers route +14252000100 sip:pbx1@pbx.example.com
  telgw numbers route +14252000100 ""`,
		Args: exactArgs(2, "E164 ROUTE"),
		RunE: one(func(ctx context.Context, svc *numbers.Service, args []string) error {
			r, err := numbers.ParseRoute(args[1])
			if err != nil {
				return usageError(err.Error())
			}
			if err := svc.SetRoute(ctx, args[0], r); err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.stdout, "%s routes to %q\n", args[0], r.String())
			return err
		}),
	}
	assign := &cobra.Command{
		Use:   "assign E164 8:acs:ID",
		Short: "Give a purchased number to a communication user",
		Long: `Give a purchased number to a communication user: its calls ring the user, and it is the user's
caller ID for outbound calls.`,
		Example: `  telgw numbers assign +14252000100 8:acs:res-1_00000000-0000-4000-8000-00000000000a`,
		Args:    exactArgs(2, "E164 and a communication user id (8:acs:…)"),
		RunE: one(func(ctx context.Context, svc *numbers.Service, args []string) error {
			if _, err := numbers.ParseUserID("communicationUser", args[1]); err != nil {
				return usageError(err.Error())
			}
			if err := svc.AssignUser(ctx, args[0], args[1]); err != nil {
				return err
			}
			_, err := fmt.Fprintf(e.stdout, "%s assigned to %s\n", args[0], args[1])
			return err
		}),
	}
	unassign := &cobra.Command{
		Use:     "unassign E164",
		Short:   "Take a number back from its user (the route returns to the default)",
		Example: `  telgw numbers unassign +14252000100`,
		Args:    exactArgs(1, "E164"),
		RunE: one(func(ctx context.Context, svc *numbers.Service, args []string) error {
			if err := svc.UnassignUser(ctx, args[0]); err != nil {
				return err
			}
			_, err := fmt.Fprintf(e.stdout, "%s is assigned to no user\n", args[0])
			return err
		}),
	}
	return group(&cobra.Command{
		Use:   "numbers",
		Short: "The number inventory: import, list, show, withdraw, route, assign, unassign",
		Long: `The US number inventory applications buy from over the ACS phone numbers API. Commands work on the
store directly, so they work while nodes serve.`,
	}, newNumbersImportCmd(e, open), list, show, withdraw, route, assign, unassign)
}

func newNumbersImportCmd(e *cliEnv, open func(context.Context) (*numbers.Service, func(), error)) *cobra.Command {
	var rng string
	var tmpl numbers.ImportInput
	c := &cobra.Command{
		Use:   "import FILE.csv | --range FIRST:LAST",
		Short: "Load carrier inventory from a CSV file or a block of numbers",
		Long: `Load carrier inventory from a CSV file (header ` + numbers.CSVHeader + `;
only phoneNumber is required) or every valid number of a block (--range; the other flags then
apply to each). Invalid rows are reported by line and skipped (exit 1), valid rows load,
re-import is idempotent. Fictional numbers (NXX 555, lines 0100-0199) are refused.`,
		Example: `  telgw numbers import --range +14252000100:+14252000199
  telgw numbers import --range +12062000100:+12062000109 --carrier smsc1 --sms outbound`,
		Args: func(_ *cobra.Command, args []string) error {
			if (rng == "") == (len(args) != 1) {
				return usageError("want FILE.csv or --range FIRST:LAST")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, done, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			var rep numbers.ImportReport
			if rng != "" {
				rep, err = svc.ImportRange(cmd.Context(), rng, tmpl)
			} else {
				var f *os.File
				if f, err = os.Open(args[0]); err != nil {
					return err
				}
				defer f.Close()
				rep, err = svc.ImportCSV(cmd.Context(), f)
			}
			for _, re := range rep.Errors {
				fmt.Fprintf(e.stderr, "line %d: %s: %s\n", re.Line, re.PhoneNumber, re.Error)
			}
			if rep.Invalid > len(rep.Errors) {
				fmt.Fprintf(e.stderr, "… and %d more invalid lines\n", rep.Invalid-len(rep.Errors))
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "imported %d numbers, %d already present, %d invalid\n", rep.Imported, rep.Existing, rep.Invalid)
			if rep.Invalid > 0 {
				return fmt.Errorf("%d invalid lines were skipped", rep.Invalid)
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&rng, "range", "", "FIRST:LAST block of E.164 numbers")
	fl.StringVar(&tmpl.Carrier, "carrier", "", "carrier name from sms.carriers (routes the numbers' SMS)")
	fl.StringVar(&tmpl.Calling, "calling", "", "offered calling capability (default inbound+outbound)")
	fl.StringVar(&tmpl.SMS, "sms", "", "offered SMS capability (default inbound+outbound)")
	fl.StringVar(&tmpl.MonthlyCost, "monthly-cost", "", "USD per month (default 1.00, toll-free 2.00)")
	fl.StringVar(&tmpl.Locality, "locality", "", "town (default from the area code)")
	fl.StringVar(&tmpl.State, "administrative-division", "", "state (default from the area code)")
	for _, f := range []string{"calling", "sms"} {
		_ = c.RegisterFlagCompletionFunc(f, cobra.FixedCompletions([]string{"inbound", "outbound", "inbound+outbound", "none"}, cobra.ShellCompDirectiveNoFileComp))
	}
	return c
}

func printNumbers(w io.Writer, ns []numbers.Number, asJSON bool) error {
	if asJSON {
		for _, n := range ns {
			v := map[string]any{"phoneNumber": n.E164, "phoneNumberType": n.Type, "state": n.EffectiveStatus(time.Now()),
				"offeredCapabilities": n.Offered, "locality": n.Locality, "administrativeDivision": n.State, "carrier": n.Carrier,
				"monthlyCost": n.MonthlyUSD, "route": n.Route.String(), "assignmentType": n.Assignment, "holdId": n.HoldID, "capabilities": n.Caps, "purchaseDate": n.Purchased}
			if err := printJSON(w, v); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NUMBER\tTYPE\tSTATE\tLOCALITY\tCARRIER\tUSD/MO\tROUTE")
	for _, n := range ns {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f\t%s\n", n.E164, n.Type, n.EffectiveStatus(time.Now()),
			n.Locality+" "+n.State, n.Carrier, n.MonthlyUSD, n.Route.String())
	}
	return tw.Flush()
}
