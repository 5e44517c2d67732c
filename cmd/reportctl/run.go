package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/reportd/reportd/client"
	"github.com/reportd/reportd/internal/console"
)

// defaultServer is the service reportctl talks to without --server or REPORTD_URL.
const defaultServer = "http://localhost:8080"

// userAgent names reportctl to the service.
const userAgent = "reportctl/1"

// barHold is how often a progress bar reads the job: each read is held this long at most, so the job's
// end shows at once and its progress about every second (client.WithProgressPolling).
const barHold = time.Second

// globals are the flags every command takes.
type globals struct {
	server  string
	timeout time.Duration
}

// register adds the global flags to fs, with their current values as defaults, so that they may be
// given before the command or after it.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.server, "server", g.server, "the reportd service's base `URL` (REPORTD_URL sets the default)")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "give up after this long (0: never)")
}

// env is what a command runs with.
type env struct {
	client *client.Client
	server string
	stdout io.Writer
	stderr io.Writer
	tty    bool // stderr is a terminal: progress may redraw itself
}

// command is one subcommand of reportctl.
type command struct {
	name     string
	args     string // the synopsis after the name
	summary  string
	flags    func(fs *flag.FlagSet) func(ctx context.Context, e *env, args []string) error
	needArgs int // positional arguments it takes
}

func commands() []command {
	return []command{createCommand, watchCommand, statusCommand, resultCommand, listCommand, cancelCommand, deleteCommand, benchCommand}
}

// usageError is a command line reportctl cannot use: it exits 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// run is reportctl: it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	g := &globals{server: getenv("REPORTD_URL")}
	if g.server == "" {
		g.server = defaultServer
	}
	top := flag.NewFlagSet("reportctl", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	g.register(top)
	rest, err := parseFlags(top, args, true)
	if errors.Is(err, flag.ErrHelp) {
		mainUsage(stdout, top)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "reportctl: %v\n\n", err)
		mainUsage(stderr, top)
		return 2
	}
	if len(rest) == 0 || rest[0] == "help" {
		if len(rest) > 1 {
			return run(ctx, append([]string{rest[1]}, "--help"), getenv, stdout, stderr)
		}
		if len(rest) == 0 {
			fmt.Fprint(stderr, "reportctl: no command given\n\n")
			mainUsage(stderr, top)
			return 2
		}
		mainUsage(stdout, top)
		return 0
	}
	var cmd *command
	for _, c := range commands() {
		if c.name == rest[0] {
			cmd = &c
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "reportctl: unknown command %q\n\n", rest[0])
		mainUsage(stderr, top)
		return 2
	}

	fs := flag.NewFlagSet("reportctl "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	do := cmd.flags(fs)
	g.register(fs)
	pos, err := parseFlags(fs, rest[1:], false)
	switch {
	case errors.Is(err, flag.ErrHelp):
		commandUsage(stdout, cmd, fs)
		return 0
	case err == nil && len(pos) != cmd.needArgs:
		err = usagef("%s takes %d argument(s) (%s), got %d", cmd.name, cmd.needArgs, cmd.args, len(pos))
	}
	if err != nil {
		fmt.Fprintf(stderr, "reportctl %s: %v\n", cmd.name, err)
		commandUsage(stderr, cmd, fs)
		return 2
	}

	tty := console.IsTerminal(stderr)
	opts := []client.Option{client.WithUserAgent(userAgent), client.WithAPIKey(getenv("REPORTD_API_KEY"))}
	if tty {
		opts = append(opts, client.WithProgressPolling(barHold))
	}
	c, err := client.New(g.server, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "reportctl: --server: %v\n", err)
		return 2
	}
	if g.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.timeout)
		defer cancel()
	}
	e := &env{client: c, server: g.server, stdout: stdout, stderr: stderr, tty: tty}
	return exitCode(do(ctx, e, pos), cmd, fs, g, stderr)
}

// exitCode reports err on stderr, and says how reportctl exits for it.
func exitCode(err error, cmd *command, fs *flag.FlagSet, g *globals, stderr io.Writer) int {
	var (
		usage   usageError
		problem *client.ProblemError
	)
	switch {
	case err == nil:
		return 0
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "reportctl %s: %v\n", cmd.name, err)
		commandUsage(stderr, cmd, fs)
		return 2
	case errors.As(err, &problem):
		fmt.Fprintf(stderr, "reportctl %s: %s (HTTP %d, %s)\n", cmd.name, problem.Error(), problem.Status, problem.Type)
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(stderr, "reportctl %s: gave up after --timeout %s\n", cmd.name, formatDuration(g.timeout))
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(stderr, "reportctl %s: interrupted\n", cmd.name)
	default:
		fmt.Fprintf(stderr, "reportctl %s: %v\n", cmd.name, err)
	}
	return 1
}

// parseFlags parses args with fs. Flags may follow positional arguments ("result ID --csv") unless
// stopAtArg, which the top level uses so that a command's flags are left to the command.
func parseFlags(fs *flag.FlagSet, args []string, stopAtArg bool) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); stopAtArg || (used > 0 && args[used-1] == "--") {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

func mainUsage(w io.Writer, top *flag.FlagSet) {
	fmt.Fprintf(w, "reportctl drives a reportd service.\n\nUsage:\n  reportctl [--server URL] [--timeout D] COMMAND [flags] [args]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nGlobal flags:\n")
	printDefaults(w, top)
	fmt.Fprintf(w, "\nREPORTD_URL is the default --server; REPORTD_API_KEY, if set, is sent as a bearer token.\n"+
		"Run \"reportctl COMMAND --help\" for a command's flags. Exit status: 0 done, 1 refused or failed, 2 bad usage.\n")
}

func commandUsage(w io.Writer, cmd *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: reportctl %s %s\n\n%s\n\nFlags:\n", cmd.name, cmd.args, cmd.summary)
	printDefaults(w, fs)
}

func printDefaults(w io.Writer, fs *flag.FlagSet) {
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// isCSV says whether output goes out as CSV: asked for, or a file named *.csv.
func isCSV(asked bool, file string) bool {
	return asked || strings.EqualFold(filepath.Ext(file), ".csv")
}
