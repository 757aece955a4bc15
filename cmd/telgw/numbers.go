package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/telgw/telgw/internal/app"
	"github.com/telgw/telgw/internal/numbers"
)

const numbersUsage = `usage:
  telgw numbers import FILE.csv            load inventory (header ` + numbers.CSVHeader + `)
  telgw numbers import --range FIRST:LAST [--carrier NAME] [--calling CAP] [--sms CAP] [--monthly-cost USD]
                                           load every valid number of a block, e.g. +14255550100:+14255550199
  telgw numbers list [--state S] [--area-code NPA] [--top N] [--json]
  telgw numbers show E164
  telgw numbers withdraw E164              remove an unsold number
  telgw numbers route E164 ROUTE           sip:URI | user:8:acs:ID | bot:URL | "" (default)
  telgw numbers assign E164 8:acs:ID       give a purchased number to a communication user
                                           (its calls ring the user, it is the user's caller ID)
  telgw numbers unassign E164              take it back (the route returns to the default)`

// runNumbers manages the inventory straight in the store, so it works while nodes serve.
func runNumbers(ctx context.Context, e *cliEnv, args []string) error {
	if len(args) == 0 {
		return usageError(numbersUsage)
	}
	sub, args := args[0], args[1:]
	open := func() (*numbers.Service, func(), error) {
		db, err := app.OpenStore(ctx, e.cfg)
		if err != nil {
			return nil, nil, err
		}
		return numbers.New(app.NumbersConfig(e.cfg, db, e.log)), func() { _ = db.Close() }, nil
	}
	switch sub {
	case "import":
		return numbersImport(ctx, e, args, open)
	case "list":
		fs := flag.NewFlagSet("numbers list", flag.ContinueOnError)
		fs.SetOutput(e.stderr)
		state := fs.String("state", "", "available, held, purchased or quarantined")
		area := fs.String("area-code", "", "area code (NPA)")
		top := fs.Int("top", 100, "how many")
		skip := fs.Int("skip", 0, "skip this many first")
		asJSON := fs.Bool("json", false, "print JSON lines")
		if err := fs.Parse(args); err != nil {
			return usageError(err.Error())
		}
		svc, done, err := open()
		if err != nil {
			return err
		}
		defer done()
		ns, err := svc.List(ctx, numbers.ListParams{State: numbers.State(*state), AreaCode: *area, Top: *top, Skip: *skip})
		if err != nil {
			return err
		}
		return printNumbers(e.stdout, ns, *asJSON)
	case "show", "withdraw", "route", "assign", "unassign":
		if want := map[string]int{"route": 2, "assign": 2}[sub]; len(args) != max(want, 1) {
			return usageError(numbersUsage)
		}
		svc, done, err := open()
		if err != nil {
			return err
		}
		defer done()
		switch sub {
		case "show":
			n, err := svc.Get(ctx, args[0])
			if err != nil {
				return err
			}
			return printNumbers(e.stdout, []numbers.Number{n}, true)
		case "withdraw":
			if err := svc.Withdraw(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "withdrew %s\n", args[0])
			return nil
		case "assign":
			if _, err := numbers.ParseUserID("communicationUser", args[1]); err != nil {
				return usageError(err.Error())
			}
			if err := svc.AssignUser(ctx, args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s assigned to %s\n", args[0], args[1])
			return nil
		case "unassign":
			if err := svc.UnassignUser(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s is assigned to no user\n", args[0])
			return nil
		default:
			r, err := numbers.ParseRoute(args[1])
			if err != nil {
				return usageError(err.Error())
			}
			if err := svc.SetRoute(ctx, args[0], r); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s routes to %q\n", args[0], r.String())
			return nil
		}
	}
	return usageError(fmt.Sprintf("unknown numbers subcommand %q\n%s", sub, numbersUsage))
}

func numbersImport(ctx context.Context, e *cliEnv, args []string, open func() (*numbers.Service, func(), error)) error {
	fs := flag.NewFlagSet("numbers import", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	rng := fs.String("range", "", "FIRST:LAST block of E.164 numbers")
	var tmpl numbers.ImportInput
	fs.StringVar(&tmpl.Carrier, "carrier", "", "carrier name (routes the numbers' SMS and calls)")
	fs.StringVar(&tmpl.Calling, "calling", "", "offered calling capability (default inbound+outbound)")
	fs.StringVar(&tmpl.SMS, "sms", "", "offered SMS capability (default inbound+outbound)")
	fs.StringVar(&tmpl.MonthlyCost, "monthly-cost", "", "USD per month (default 1.00, toll-free 2.00)")
	fs.StringVar(&tmpl.Locality, "locality", "", "town (default from the area code)")
	fs.StringVar(&tmpl.State, "administrative-division", "", "state (default from the area code)")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	if (*rng == "") == (fs.NArg() != 1) {
		return usageError("want FILE.csv or --range FIRST:LAST\n" + numbersUsage)
	}
	svc, done, err := open()
	if err != nil {
		return err
	}
	defer done()
	var rep numbers.ImportReport
	if *rng != "" {
		rep, err = svc.ImportRange(ctx, *rng, tmpl)
	} else {
		var f *os.File
		if f, err = os.Open(fs.Arg(0)); err != nil {
			return err
		}
		defer f.Close()
		rep, err = svc.ImportCSV(ctx, f)
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
}

func printNumbers(w io.Writer, ns []numbers.Number, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, n := range ns {
			v := map[string]any{"phoneNumber": n.E164, "phoneNumberType": n.Type, "state": n.EffectiveStatus(time.Now()),
				"offeredCapabilities": n.Offered, "locality": n.Locality, "administrativeDivision": n.State, "carrier": n.Carrier,
				"monthlyCost": n.MonthlyUSD, "route": n.Route.String(), "assignmentType": n.Assignment, "holdId": n.HoldID, "capabilities": n.Caps, "purchaseDate": n.Purchased}
			if err := enc.Encode(v); err != nil {
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
