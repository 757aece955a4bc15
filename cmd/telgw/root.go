package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/telgw/telgw/config"
	"github.com/telgw/telgw/internal/app"
)

// Why cobra rather than kong: cobra ships shell completion for bash, zsh, fish and PowerShell
// (kong needs a third-party add-on), its per-command Example text is what the help-example
// test runs, and it is what most Go operators' tools (kubectl, hugo, gh) feel like.

// cliEnv is what every subcommand gets: the loaded config, the logger and the outputs. cfg and
// log are set by the root's PersistentPreRunE, only for commands that need configuration, so
// `--help`, `version` and `completion` work with a broken config.
type cliEnv struct {
	cfg     config.Config
	log     *slog.Logger
	stdout  io.Writer
	stderr  io.Writer
	environ []string
}

// noConfig marks a command that runs without loading the configuration.
const noConfig = "telgw/no-config"

// usageError marks a bad command line (exit status 2).
type usageError string

func (e usageError) Error() string { return string(e) }

// configError marks a configuration that does not load or validate (exit status 1).
type configError struct{ err error }

func (e configError) Error() string { return "configuration:\n" + e.err.Error() }

func init() {
	// Commands appear in help in the order they are added (workflow order, not alphabetical).
	cobra.EnableCommandSorting = false
}

// newRoot builds the command tree around e.
func newRoot(e *cliEnv) *cobra.Command {
	root := &cobra.Command{
		Use:   "telgw",
		Short: "A self-hosted PSTN/SMS telephony gateway with an ACS-compatible REST API",
		Long: `telgw is a self-hosted PSTN/SMS telephony gateway with an ACS-compatible REST API.

Configuration: TELGW_CONFIG names a YAML file; every key has a TELGW_* environment override
(TELGW_DATA_DIR, TELGW_DATABASE_URL, TELGW_HTTP_ADDR, …). Commands that touch the store work
while nodes serve.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError(fmt.Sprintf("unknown command %q", args[0]))
			}
			return usageError("missing command")
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			for c := cmd; c != nil; c = c.Parent() {
				if c.Annotations[noConfig] != "" {
					return nil
				}
			}
			if !cmd.Runnable() || cmd.Name() == "help" {
				return nil
			}
			return e.loadConfig()
		},
	}
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err.Error()) })
	root.CompletionOptions.HiddenDefaultCmd = false
	root.AddCommand(
		newServeCmd(e),
		newMigrateCmd(e),
		newKeysCmd(e),
		newNumbersCmd(e),
		newMessagesCmd(e),
		newCallsCmd(e),
		newNodesCmd(e),
		newSIPCmd(e),
		newTokensCmd(e),
		newConsoleCmd(e),
		newHealthcheckCmd(e),
		newVersionCmd(e),
	)
	// cobra adds `completion` and `help` on Execute; neither needs configuration.
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" || c.Name() == "help" {
			markNoConfig(c)
		}
		if c.Name() == "completion" {
			group(c) // `telgw completion tcsh` is a usage error, not help with exit 0
		}
	}
	return root
}

// markNoConfig marks c (and so its subcommands) as not needing configuration.
func markNoConfig(c *cobra.Command) *cobra.Command {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[noConfig] = "1"
	return c
}

// group makes c a command that only holds subcommands: run bare or with an unknown
// subcommand it is a usage error (cobra would print help and exit 0).
func group(c *cobra.Command, subs ...*cobra.Command) *cobra.Command {
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		var names []string
		for _, s := range cmd.Commands() {
			if s.IsAvailableCommand() {
				names = append(names, s.Name())
			}
		}
		if len(args) > 0 {
			return usageError(fmt.Sprintf("unknown subcommand %q; want one of %s", args[0], strings.Join(names, ", ")))
		}
		return usageError("want a subcommand: " + strings.Join(names, ", "))
	}
	c.AddCommand(subs...)
	return c
}

// exactArgs is cobra.ExactArgs as a usage error that names what is wanted.
func exactArgs(n int, want string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError(fmt.Sprintf("want %s, got %d arguments", want, len(args)))
		}
		return nil
	}
}

// loadConfig loads and validates the configuration (TELGW_CONFIG and TELGW_* variables) and
// builds the logger from it.
func (e *cliEnv) loadConfig() error {
	path := ""
	for _, kv := range e.environ {
		if v, ok := strings.CutPrefix(kv, "TELGW_CONFIG="); ok {
			path = v
		}
	}
	cfg, err := config.Load(path, e.environ)
	if err := config.Check(&cfg, err); err != nil {
		return configError{err}
	}
	e.cfg = cfg
	e.log = app.NewLogger(cfg.Log, e.stderr)
	return nil
}

// singleDashFlag is a long flag written Go-flag style (-limit 5): the CLI before cobra took
// those, so scripts may still pass them.
var singleDashFlag = regexp.MustCompile(`^-[a-zA-Z][a-zA-Z0-9-]+(=.*)?$`)

// execute runs args against a fresh command tree.
func execute(args []string, stdout, stderr io.Writer, environ []string) int {
	e := &cliEnv{stdout: stdout, stderr: stderr, environ: environ}
	root := newRoot(e)
	fixed := make([]string, len(args))
	for i, a := range args {
		if a == "--" {
			copy(fixed[i:], args[i:])
			break
		}
		if singleDashFlag.MatchString(a) {
			a = "-" + a
		}
		fixed[i] = a
	}
	root.SetArgs(fixed)
	ctx, stop := signalContext()
	defer stop()
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	path := "telgw"
	if cmd != nil {
		path = cmd.CommandPath()
	}
	var ue usageError
	var ce configError
	switch {
	case errors.As(err, &ue) || isCobraUsage(err):
		fmt.Fprintf(stderr, "%s: %v\n", path, err)
		if cmd == root && len(args) == 0 {
			root.SetOut(stderr)
			_ = root.Usage()
		} else {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", path)
		}
		return 2
	case errors.As(err, &ce):
		fmt.Fprintf(stderr, "telgw: %v\n", err)
		return 1
	default:
		fmt.Fprintf(stderr, "%s: %v\n", path, err)
		return 1
	}
}

// isCobraUsage recognises the command-line errors cobra itself returns unwrapped.
func isCobraUsage(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown command") || strings.HasPrefix(s, "unknown flag") ||
		strings.HasPrefix(s, "invalid argument") || strings.Contains(s, "arg(s)")
}

// printJSON writes v as one line of JSON.
func printJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// printJSONIndent writes v as indented JSON (show commands).
func printJSONIndent(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// signalContext is cancelled by SIGINT (cause nil: stop now, hanging up calls) or SIGTERM
// (cause app.ErrDrain: `telgw serve` drains first, as service managers and orchestrators
// expect of SIGTERM).
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGTERM {
				cancel(app.ErrDrain)
			} else {
				cancel(nil)
			}
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(nil)
	}
}
