// Command telgw is a self-hosted PSTN/SMS telephony gateway with an ACS-compatible REST API.
//
//	telgw serve                  run the gateway (SQLite in ./data unless TELGW_DATABASE_URL)
//	telgw migrate                apply database migrations and exit
//	telgw keys show|rotate KEY   print the access keys / replace one (primary|secondary)
//	telgw messages [list|show]   print the SMS message log
//	telgw console link           print a single-use sign-in link to the web console
//	telgw version                print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/telgw/telgw/config"
	"github.com/telgw/telgw/internal/app"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// command is one CLI subcommand.
type command struct {
	name, usage string
	run         func(ctx context.Context, env *cliEnv, args []string) error
}

// cliEnv is what every subcommand gets: loaded config, logger and output.
type cliEnv struct {
	cfg    config.Config
	log    *slog.Logger
	stdout io.Writer
	stderr io.Writer
}

func commands() []command {
	return []command{
		{"serve", "run the gateway", runServe},
		{"migrate", "apply database migrations and exit", runMigrate},
		{"keys", "show|rotate primary|secondary: print or replace the ACS access keys", runKeys},
		{"messages", "list [-from -to -status -limit] | show ID: the SMS message log", runMessages},
		{"calls", "list [-number N] [-limit N]: call detail records", runCalls},
		{"sip", "credentials list | add USER PASSWORD NUMBER… | delete USER: customer SIP endpoint credentials", runSIP},
		{"numbers", "import FILE.csv | import --range A:B | list | show | withdraw | route | assign | unassign: the number inventory", runNumbers},
		{"console", "link [-ttl 10m]: print a single-use sign-in link to the web console", runConsole},
		{"version", "print the version", func(_ context.Context, e *cliEnv, _ []string) error {
			_, err := fmt.Fprintln(e.stdout, "telgw", version)
			return err
		}},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	usage := func() {
		fmt.Fprintln(stderr, "usage: telgw COMMAND [args]\n\ncommands:")
		for _, c := range commands() {
			fmt.Fprintf(stderr, "  %-10s %s\n", c.name, c.usage)
		}
		fmt.Fprintln(stderr, "\nconfiguration: TELGW_CONFIG (YAML) and TELGW_* environment variables")
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		return 2
	}
	var cmd *command
	for _, c := range commands() {
		if c.name == args[0] {
			cmd = &c
			break
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "telgw: unknown command %q\n", args[0])
		usage()
		return 2
	}
	cfg, err := config.Load(os.Getenv("TELGW_CONFIG"), os.Environ())
	if err = config.Check(&cfg, err); err != nil {
		fmt.Fprintf(stderr, "telgw: configuration:\n%v\n", err)
		return 1
	}
	env := &cliEnv{cfg: cfg, log: newLogger(cfg.Log, stderr), stdout: stdout, stderr: stderr}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.run(ctx, env, args[1:]); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "telgw %s: %v\n", cmd.name, err)
			return 2
		}
		fmt.Fprintf(stderr, "telgw %s: %v\n", cmd.name, err)
		return 1
	}
	return 0
}

// usageError marks a bad command line (exit status 2).
type usageError string

func (e usageError) Error() string { return string(e) }

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func runServe(ctx context.Context, e *cliEnv, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	a, err := app.New(ctx, e.cfg, e.log)
	if err != nil {
		return err
	}
	if err := a.Listen(); err != nil {
		a.Close()
		return err
	}
	fmt.Fprintf(e.stdout, "telgw %s listening on %s (store: %s)\n", version, a.Endpoint(), a.DB.Dialect())
	// The connection string carries the access key: print it once, when the key is new, not
	// into every start's log (journald, container logs).
	if a.Keys.Generated() {
		fmt.Fprintf(e.stdout, "new access key generated; connection string: %s\n", a.ConnectionString())
	}
	fmt.Fprintf(e.stdout, "connection string in %s (also: telgw keys show)\n", filepath.Join(e.cfg.DataDir, "connection-string"))
	return a.Run(ctx)
}

func runMigrate(ctx context.Context, e *cliEnv, _ []string) error {
	db, err := app.OpenStore(ctx, e.cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	v, err := db.MigrationVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "migrated %s store to version %d\n", db.Dialect(), v)
	return nil
}
