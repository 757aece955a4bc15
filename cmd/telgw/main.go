// Command telgw is a self-hosted PSTN/SMS telephony gateway with an ACS-compatible REST API.
//
//	telgw serve                  run the gateway (SQLite in ./data unless TELGW_DATABASE_URL)
//	telgw migrate                apply database migrations and exit
//	telgw keys show|rotate       print the access keys / replace one (primary|secondary)
//	telgw numbers …              the number inventory (import, list, show, route, assign…)
//	telgw messages list|show     the SMS message log
//	telgw calls list             call detail records
//	telgw nodes                  the live nodes of the cluster (several nodes on one PostgreSQL)
//	telgw sip credentials …      customers' SIP endpoint credentials
//	telgw tokens issue USER      a user access token (voip) for the softphone
//	telgw healthcheck            probe a running node's /healthz (container HEALTHCHECK)
//	telgw version                the build: version, VCS revision, Go version
//	telgw completion SHELL       shell completion (bash, zsh, fish, powershell)
//
// The command tree is built with spf13/cobra (see root.go); `telgw COMMAND --help` documents
// every command.
package main

import (
	"io"
	"os"
)

// version and revision are set at build time with -ldflags "-X main.version=… -X
// main.revision=…" (see the Makefile); revision only matters when the Go toolchain did not
// stamp the VCS revision itself.
var version, revision = "dev", ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit status: 0 on success (and for --help),
// 2 for a bad command line, 1 for any other failure.
func run(args []string, stdout, stderr io.Writer) int {
	return execute(args, stdout, stderr, os.Environ())
}
