package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/telgw/telgw/internal/app"
	"github.com/telgw/telgw/internal/sms"
)

func newMessagesCmd(e *cliEnv) *cobra.Command {
	var f sms.MessageFilter
	var status string
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "Print the SMS message log, newest first",
		Example: `  telgw messages list --limit 20
  telgw messages list --status failed --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.Status = sms.Status(status)
			db, err := app.OpenStore(cmd.Context(), e.cfg)
			if err != nil {
				return err
			}
			defer db.Close()
			ms, err := sms.New(sms.Config{Store: db}).Messages(cmd.Context(), f)
			if err != nil {
				return err
			}
			if asJSON {
				for _, m := range ms {
					if err := printJSON(e.stdout, m); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CREATED\tID\tFROM\tTO\tSTATUS\tSEGMENTS\tDETAILS")
			for _, m := range ms {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d/%d\t%s\n", m.CreatedAt.Format(time.RFC3339), m.ID, m.From, m.To, m.Status,
					m.SegmentsSucceeded, m.SegmentsFailed, m.Segments, m.StatusDetails)
			}
			return tw.Flush()
		},
	}
	fl := list.Flags()
	fl.StringVar(&f.From, "from", "", "only messages from this E.164 number")
	fl.StringVar(&f.To, "to", "", "only messages to this E.164 number")
	fl.StringVar(&status, "status", "", "only messages in this status (queued, sent, delivered, failed)")
	fl.IntVar(&f.Limit, "limit", 50, "how many, newest first (at most 1000)")
	fl.BoolVar(&asJSON, "json", false, "print one JSON object per line")
	_ = list.RegisterFlagCompletionFunc("status", cobra.FixedCompletions([]string{"queued", "sent", "delivered", "failed"}, cobra.ShellCompDirectiveNoFileComp))

	show := &cobra.Command{
		Use:     "show MESSAGE_ID",
		Short:   "Print one message as JSON",
		Example: `  telgw messages show 2f0c6f9e-8d1c-4f1e-9a63-7c1a3f1b2d10`,
		Args:    exactArgs(1, "MESSAGE_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := app.OpenStore(cmd.Context(), e.cfg)
			if err != nil {
				return err
			}
			defer db.Close()
			m, err := sms.New(sms.Config{Store: db}).Message(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("message %s: %w", args[0], err)
			}
			return printJSONIndent(e.stdout, m)
		},
	}
	show.Flags().Bool("json", true, "print JSON (always)")
	c := group(&cobra.Command{
		Use:   "messages",
		Short: "The SMS message log",
		Long:  "The SMS message log. `telgw messages` with flags and no subcommand lists, as before.",
	}, list, show)
	// `telgw messages --status failed` (no subcommand) lists, as the CLI did before subcommands.
	c.Flags().AddFlagSet(list.Flags())
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageError(fmt.Sprintf("unknown subcommand %q; want list or show", args[0]))
		}
		return list.RunE(cmd, args)
	}
	return c
}
