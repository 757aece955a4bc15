package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/telgw/telgw/internal/app"
	"github.com/telgw/telgw/internal/sms"
)

// runMessages prints the SMS message log: `telgw messages [list] [-from N] [-to N]
// [-status queued|sent|delivered|failed] [-limit N]` or `telgw messages show ID` (JSON).
func runMessages(ctx context.Context, e *cliEnv, args []string) error {
	if len(args) > 0 && args[0] == "show" {
		if len(args) != 2 {
			return usageError("want show MESSAGE_ID")
		}
		db, err := app.OpenStore(ctx, e.cfg)
		if err != nil {
			return err
		}
		defer db.Close()
		m, err := sms.New(sms.Config{Store: db}).Message(ctx, args[1])
		if err != nil {
			return fmt.Errorf("message %s: %w", args[1], err)
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(m)
	}
	if len(args) > 0 && args[0] == "list" {
		args = args[1:]
	}
	fs := flag.NewFlagSet("messages", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var f sms.MessageFilter
	var status string
	fs.StringVar(&f.From, "from", "", "only messages from this E.164 number")
	fs.StringVar(&f.To, "to", "", "only messages to this E.164 number")
	fs.StringVar(&status, "status", "", "only messages in this status (queued, sent, delivered, failed)")
	fs.IntVar(&f.Limit, "limit", 50, "how many, newest first (at most 1000)")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	f.Status = sms.Status(status)
	db, err := app.OpenStore(ctx, e.cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	ms, err := sms.New(sms.Config{Store: db}).Messages(ctx, f)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CREATED\tID\tFROM\tTO\tSTATUS\tSEGMENTS\tDETAILS")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d/%d\t%s\n", m.CreatedAt.Format(time.RFC3339), m.ID, m.From, m.To, m.Status,
			m.SegmentsSucceeded, m.SegmentsFailed, m.Segments, m.StatusDetails)
	}
	return tw.Flush()
}
