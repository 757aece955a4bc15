package main

import "github.com/spf13/cobra"

// newConsoleCmd is the `telgw console` group for the web console at /console/ (issue 15 item
// 1): its subcommands (e.g. `console link`, a one-time sign-in link) are added here, in
// console_*.go files. Until one exists the group is hidden from help.
func newConsoleCmd(_ *cliEnv) *cobra.Command {
	c := group(&cobra.Command{
		Use:   "console",
		Short: "The web console at /console/",
	})
	c.Hidden = !c.HasSubCommands()
	return c
}
