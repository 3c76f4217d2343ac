package main

import (
	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/internal/serveconfig"
)

// config is the configuration file as loaded (docs/CONTRACT.md §2-4): authz's
// part, which the pipeline compiled (authz.New and Reload take it), and the
// serve process's own settings (listeners, TLS, tracing, the shutdown delay;
// internal/serveconfig), read from the same file in the same pass. Both
// are embedded, so cfg.JWT and cfg.GRPCAddr read as one configuration.
type config struct {
	*authz.Config
	*serveconfig.Settings
}

// loadText loads a configuration file's text with the environment and the
// serve flags (docs/CONTRACT.md §2 precedence). The error joins every
// problem of both parts, each an *authz.FieldError.
func loadText(text []byte, lookupEnv func(string) (string, bool), flags serveconfig.Flags) (*config, error) {
	cfg, s, err := serveconfig.Load(text, lookupEnv, flags)
	if err != nil {
		return nil, err
	}
	return &config{Config: cfg, Settings: s}, nil
}
