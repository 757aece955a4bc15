package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/telgw/telgw/internal/app"
	"github.com/telgw/telgw/internal/cluster"
)

func newNodesCmd(e *cliEnv) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "nodes",
		Short: "List the live nodes of the cluster",
		Long: `List the live telgw nodes sharing this store (several nodes on one PostgreSQL): each node's name,
internal SIP and HTTP addresses, start and last heartbeat, whether it is draining, its calls in
progress, its registered WebRTC devices and the leases it holds (e.g. SMPP binds). A node killed
without a clean stop drops out after cluster.leaseTTL. The same view: GET /telgw/nodes.`,
		Example: `  telgw nodes
  telgw nodes --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := app.OpenStore(cmd.Context(), e.cfg)
			if err != nil {
				return err
			}
			defer db.Close()
			ns, err := cluster.View(cmd.Context(), db, time.Now())
			if err != nil {
				return err
			}
			if asJSON {
				for _, n := range ns {
					if err := printJSON(e.stdout, n); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSIP\tHTTP\tSTARTED\tHEARTBEAT\tSTATE\tCALLS\tREGISTRATIONS\tLEASES\tID")
			for _, n := range ns {
				state := "up"
				if n.Draining {
					state = "draining"
				}
				var ls []string
				for _, l := range n.Leases {
					ls = append(ls, fmt.Sprintf("%s#%d", l.Name, l.Slot))
				}
				lease := strings.Join(ls, ",")
				if lease == "" {
					lease = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s ago\t%s\t%d\t%d\t%s\t%s\n", n.Name, n.SIPAddr, n.HTTPAddr, n.Started.Format(time.RFC3339),
					time.Since(n.Heartbeat).Round(100*time.Millisecond), state, n.Calls, n.Registrations, lease, n.ID)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	return c
}
