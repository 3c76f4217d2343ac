package main

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/internal/serveconfig"
)

// runValidate loads a configuration the way serve does (file, environment,
// then compiling keys and routes) without serving: exit 0 when it is
// valid, 2 with every problem named on stderr.
func runValidate(_ context.Context, args []string, s sys) int {
	fset := newFlagSet("validate", "[--config F] [--strict]",
		"Loads and checks a configuration without serving: the file (--config, else\n"+
			"AUTHZ_CONFIG), the environment variables, the keys and the route table.\n"+
			"Exit status 0 when valid; 2 with every problem named, by field, on stderr.\n"+
			"Settings that weaken protection are printed as 'warning: <field>: <why>'\n"+
			"lines; --strict makes them fail too (exit 2), for CI pipelines.",
		s.stderr)
	cfgPath := fset.String("config", "", "configuration file (default $AUTHZ_CONFIG)")
	strict := fset.Bool("strict", false, "exit 2 when there is any warning")
	if code, ok := parseFlags(fset, args); !ok {
		return code
	}
	path := configPath(*cfgPath, s.lookupEnv)
	cfg, err := loadConfig(path, s.lookupEnv, serveconfig.Flags{})
	if err != nil {
		printConfigError(s.stderr, err)
		return exitUsage
	}
	// New parses the keys and compiles the route table: problems Load's
	// field checks cannot see.
	if _, err := authz.New(cfg.Config, authz.Options{Logger: zap.NewNop(), Clock: s.now}); err != nil {
		printConfigError(s.stderr, err)
		return exitUsage
	}
	warnings := cfg.Warnings()
	for _, w := range warnings {
		fmt.Fprintf(s.stderr, "warning: %s\n", w)
	}
	if *strict && len(warnings) > 0 {
		fmt.Fprintf(s.stderr, "%d warning(s) and --strict: configuration refused\n", len(warnings))
		return exitUsage
	}
	if path == "" {
		path = "(no file: defaults and environment)"
	}
	fmt.Fprintf(s.stdout, "configuration OK: %s\n", path)
	return exitOK
}
