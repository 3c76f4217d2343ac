// Package serveconfig is the serve process's own part of the configuration
// file: the listener addresses, the shutdown delay, the http:, tls: and
// tracing: sections (docs/CONTRACT.md §2, §4; README "Configuration").
// They share the file, its strict decoding and its error type with
// authz's part: Load decodes both through authz.Load's LoadOptions.Extra,
// so a key of neither is an unknown field and every problem is an
// *authz.FieldError naming its YAML path. The pipeline (authz) never reads
// these settings; cmd/agentos-authz wires them. It reads no environment
// variable: only the file and the serve flags set them.
package serveconfig

import (
	"fmt"
	"net"
	"time"

	"github.com/agentos-authz/agentos-authz/authz"
)

// Settings are the serve process's settings after Load merged the
// defaults, the file and the flags.
type Settings struct {
	// The serve listeners (docs/CONTRACT.md §2: every serve flag is
	// settable here).
	GRPCAddr  string `yaml:"grpc_addr"`
	HTTPAddr  string `yaml:"http_addr"` // "off" disables the HTTP mode
	AdminAddr string `yaml:"admin_addr"`
	// ShutdownDelay is how long checks are still answered after SIGTERM,
	// with health already NOT_SERVING, before the drain (--shutdown-delay).
	ShutdownDelay authz.Duration `yaml:"shutdown_delay"`
	// HTTP is the http: section (the HTTP ext_authz listener,
	// docs/CONTRACT.md §6).
	HTTP HTTPConfig `yaml:"http"`
	// TLS is the tls: section (TLS / mTLS on the listeners; tls.go).
	TLS TLSConfig `yaml:"tls"`
	// Tracing is the tracing: section (OpenTelemetry; tracing.go).
	Tracing TracingConfig `yaml:"tracing"`
}

// Defaults of the serve listeners (docs/CONTRACT.md §2).
const (
	DefaultGRPCAddr  = ":9191"
	DefaultHTTPAddr  = ":8181"
	DefaultAdminAddr = ":9090"
	// HTTPAddrOff as http_addr disables the HTTP ext_authz listener.
	HTTPAddrOff = "off"
	// AdminAddrOff as admin_addr disables the admin listener (health,
	// metrics and the policy API).
	AdminAddrOff = "off"
)

// maxShutdownDelay bounds shutdown_delay: a delay is a few seconds of
// endpoint propagation, and Kubernetes kills the pod after
// terminationGracePeriodSeconds anyway.
const maxShutdownDelay = 5 * time.Minute

// defaults are the settings with nothing set.
func defaults() Settings {
	return Settings{GRPCAddr: DefaultGRPCAddr, HTTPAddr: DefaultHTTPAddr, AdminAddr: DefaultAdminAddr}
}

// Flags are the serve flags given on the command line; nil means not
// given, so only given flags override the file (docs/CONTRACT.md §2).
type Flags struct {
	GRPCAddr  *string
	HTTPAddr  *string
	AdminAddr *string
	// ShutdownDelay is --shutdown-delay.
	ShutdownDelay *time.Duration
}

// Load loads the configuration file text in one pass: authz's part
// (authz.Load, with the environment read through lookupEnv) and these
// settings, defaults then file then flags. The error joins every problem
// of both, each an *authz.FieldError naming its YAML path.
func Load(text []byte, lookupEnv func(string) (string, bool), flags Flags) (*authz.Config, *Settings, error) {
	s := defaults()
	cfg, err := authz.Load(text, lookupEnv, authz.LoadOptions{
		Extra: &s,
		CheckExtra: func() []error {
			s.applyFlags(flags)
			return s.check()
		},
	})
	if err != nil {
		return nil, nil, err
	}
	return cfg, &s, nil
}

func (s *Settings) applyFlags(f Flags) {
	if f.GRPCAddr != nil {
		s.GRPCAddr = *f.GRPCAddr
	}
	if f.HTTPAddr != nil {
		s.HTTPAddr = *f.HTTPAddr
	}
	if f.AdminAddr != nil {
		s.AdminAddr = *f.AdminAddr
	}
	if f.ShutdownDelay != nil {
		s.ShutdownDelay = authz.Duration{Duration: *f.ShutdownDelay}
	}
}

// check returns every problem of s, each an *authz.FieldError.
func (s *Settings) check() []error {
	var errs []error
	errs = append(errs, s.HTTP.check()...)
	errs = append(errs, s.TLS.check()...)
	errs = append(errs, s.Tracing.check()...)
	if d := s.ShutdownDelay.Duration; d < 0 || d > maxShutdownDelay {
		errs = append(errs, &authz.FieldError{Field: "shutdown_delay",
			Err: fmt.Errorf("%s must be between 0s and %s", d, maxShutdownDelay)})
	}
	for _, a := range []struct {
		field, addr string
		off         bool
	}{
		{"grpc_addr", s.GRPCAddr, false},
		{"http_addr", s.HTTPAddr, true},
		{"admin_addr", s.AdminAddr, true},
	} {
		if a.off && a.addr == HTTPAddrOff {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			errs = append(errs, &authz.FieldError{Field: a.field, Err: fmt.Errorf("%q is not a host:port listen address", a.addr)})
		}
	}
	return errs
}
