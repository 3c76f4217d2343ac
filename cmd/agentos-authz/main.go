// Command agentos-authz is the AgentOS RBAC external-authorization service
// for Envoy and its operator tools (docs/CONTRACT.md §2).
//
// This package is wiring only: flags, environment, logger, listeners,
// health, signals. Decisions live in authz, the Envoy translation in envoy.
// Each subcommand is a function returning an exit code; nothing here calls
// os.Exit except main.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Exit codes shared by the commands (docs/CONTRACT.md §2).
const (
	exitOK     = 0
	exitDenied = 1 // check: the request is denied
	exitFault  = 1 // serve: a listener failed
	exitUsage  = 2 // bad flags, or an invalid configuration
)

// sys is the process's outside world, injected so tests run commands in
// process: standard streams, the environment and the clock.
type sys struct {
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
	lookupEnv func(string) (string, bool)
	now       func() time.Time
}

func main() {
	// SIGTERM/SIGINT cancel ctx: serve drains and exits 0.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], sys{
		stdin:     os.Stdin,
		stdout:    os.Stdout,
		stderr:    os.Stderr,
		lookupEnv: os.LookupEnv,
		now:       time.Now,
	})
	stop()
	os.Exit(code)
}

// command is one subcommand: its name, one-line summary and entry point.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, s sys) int
}

// commands lists the subcommands in usage order.
func commands() []command {
	return []command{
		{"serve", "run the ext_authz service (--dev: ephemeral key and example tokens)", runServe},
		{"check", "decide one request offline (or ask a running service) and say why", runCheck},
		{"token", "mint a development token", runToken},
		{"keygen", "write a key pair as PEM files", runKeygen},
		{"validate", "load and check a configuration without serving", runValidate},
		{"test", "run policy test files (requests and the decisions they must get)", runTest},
		{"routes", "print the effective route table of a configuration", runRoutes},
		{"version", "print the version, VCS revision and Go version (also --version)", runVersion},
	}
}

// run dispatches args to a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, s sys) int {
	if len(args) == 0 {
		usage(s.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		usage(s.stdout)
		return exitOK
	case "--version", "-version":
		return runVersion(ctx, args[1:], s)
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(ctx, args[1:], s)
		}
	}
	fmt.Fprintf(s.stderr, "agentos-authz: unknown command %q\n\n", name)
	usage(s.stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, "Usage: agentos-authz <command> [flags]\n\nAn Envoy ext_authz service with AgentOS RBAC.\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun 'agentos-authz <command> -h' for the flags of a command.\n")
}
