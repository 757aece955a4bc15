package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/telgw/telgw/internal/app"
	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/e164"
	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/problem"
)

func newCallsCmd(e *cliEnv) *cobra.Command {
	var p calls.CDRListParams
	var num string
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "Print call detail records, newest first",
		Example: `  telgw calls list --limit 20
  telgw calls list --number +14252000100 --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if num != "" {
				n, err := e164.Normalize(num)
				if err != nil {
					return usageError(err.Error())
				}
				p.Number = n
			}
			db, err := app.OpenStore(cmd.Context(), e.cfg)
			if err != nil {
				return err
			}
			defer db.Close()
			cdrs, err := calls.CDRLog{Store: db}.List(cmd.Context(), p)
			if err != nil {
				return err
			}
			if asJSON {
				for _, c := range cdrs {
					if err := printJSON(e.stdout, c); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "START\tDIRECTION\tFROM\tTO\tTRUNK\tDISPOSITION\tCODE\tQ850\tDURATION\tENDED BY\tCALL-ID")
			for _, c := range cdrs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", c.Start.Format(time.RFC3339), c.Direction, c.From, c.To, c.Trunk,
					c.Disposition, c.SIPCode, c.Q850, c.Duration().Round(time.Second), c.EndedBy, c.CallID)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&num, "number", "", "only calls from or to this number")
	list.Flags().IntVar(&p.Top, "limit", 50, "how many, newest first")
	list.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	c := group(&cobra.Command{
		Use:   "calls",
		Short: "Call detail records",
		Long:  "Call detail records. `telgw calls` with flags and no subcommand lists, as before.",
	}, list)
	c.Flags().AddFlagSet(list.Flags())
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageError(fmt.Sprintf("unknown subcommand %q; want list", args[0]))
		}
		return list.RunE(cmd, args)
	}
	return c
}

// newSIPCmd manages customers' SIP endpoint credentials through the same service as the REST
// edge (/telgw/sip/credentials), with the configured realm, so a credential made here
// authenticates against the SIP edge's challenges.
func newSIPCmd(e *cliEnv) *cobra.Command {
	withCreds := func(cmd *cobra.Command, f func(calls.CredentialService) error) error {
		db, err := app.OpenStore(cmd.Context(), e.cfg)
		if err != nil {
			return err
		}
		defer db.Close()
		return f(calls.CredentialService{Store: db, Realm: e.cfg.SIP.Realm,
			Router: calls.NumberRouter{Numbers: numbers.New(app.NumbersConfig(e.cfg, db, e.log))}})
	}
	var asJSON bool
	list := &cobra.Command{
		Use:     "list",
		Short:   "List SIP endpoint credentials",
		Example: `  telgw sip credentials list --json`,
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCreds(cmd, func(creds calls.CredentialService) error {
				list, err := creds.List(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					for _, c := range list {
						if err := printJSON(e.stdout, map[string]any{"username": c.Username, "numbers": c.Numbers, "createdAt": c.CreatedAt}); err != nil {
							return err
						}
					}
					return nil
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "USERNAME\tNUMBERS\tCREATED")
				for _, c := range list {
					fmt.Fprintf(tw, "%s\t%v\t%s\n", c.Username, c.Numbers, c.CreatedAt.Format(time.RFC3339))
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	add := &cobra.Command{
		Use:   "add USER PASSWORD NUMBER...",
		Short: "Add a digest credential that may call from the given purchased numbers",
		Long: `Add a digest credential for a customer's SIP endpoint or PBX. NUMBER are purchased numbers it
may use as caller ID; their calls ring it when routed to it. The password is kept only as HA1s.`,
		Example: `  telgw sip credentials add pbx1 'correct-horse-battery' +14252000100`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 3 {
				return usageError("want USER PASSWORD NUMBER…")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCreds(cmd, func(creds calls.CredentialService) error {
				c, err := creds.Create(cmd.Context(), args[0], args[1], args[2:])
				if problem.KindOf(err) == problem.KindInvalid {
					return usageError(err.Error())
				}
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(e.stdout, "credential %s for %v\n", c.Username, c.Numbers)
				return err
			})
		},
	}
	del := &cobra.Command{
		Use:     "delete USER",
		Short:   "Delete a credential",
		Example: `  telgw sip credentials delete pbx1`,
		Args:    exactArgs(1, "USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCreds(cmd, func(creds calls.CredentialService) error { return creds.Delete(cmd.Context(), args[0]) })
		},
	}
	credentials := group(&cobra.Command{Use: "credentials", Short: "Customers' SIP endpoint credentials"}, list, add, del)
	return group(&cobra.Command{Use: "sip", Short: "SIP endpoint credentials"}, credentials)
}
