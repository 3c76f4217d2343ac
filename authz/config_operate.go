package authz

import (
	"fmt"
)

// Operating settings (docs/CONTRACT.md §4): the enforcement mode. The
// shutdown delay is the serve process's (internal/serveconfig).

// Values of mode.
const (
	// ModeEnforce answers every check as decided (the default).
	ModeEnforce = "enforce"
	// ModeShadow lets every authentication and authorization denial
	// through, reporting the decision it would have made (Decision.Shadow).
	ModeShadow = "shadow"
)

// Shadow reports whether the configuration runs in shadow mode.
func (c *Config) Shadow() bool { return c.Mode == ModeShadow }

// checkOperate validates mode; each problem names its field.
func (c *Config) checkOperate() []error {
	var errs []error
	switch c.Mode {
	case ModeEnforce, ModeShadow:
	default:
		errs = append(errs, &FieldError{Field: "mode", Err: fmt.Errorf("%q must be enforce or shadow", c.Mode)})
	}
	return errs
}
