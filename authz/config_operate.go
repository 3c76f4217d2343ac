package authz

import (
	"fmt"
	"time"
)

// Operating settings (docs/CONTRACT.md §4): the enforcement mode and the
// shutdown delay.

// Values of mode.
const (
	// ModeEnforce answers every check as decided (the default).
	ModeEnforce = "enforce"
	// ModeShadow lets every authentication and authorization denial
	// through, reporting the decision it would have made (Decision.Shadow).
	ModeShadow = "shadow"
)

// maxShutdownDelay bounds shutdown_delay: a delay is a few seconds of
// endpoint propagation, and Kubernetes kills the pod after
// terminationGracePeriodSeconds anyway.
const maxShutdownDelay = 5 * time.Minute

// Shadow reports whether the configuration runs in shadow mode.
func (c *Config) Shadow() bool { return c.Mode == ModeShadow }

// checkOperate validates mode and shutdown_delay; each problem names its
// field.
func (c *Config) checkOperate() []error {
	var errs []error
	switch c.Mode {
	case ModeEnforce, ModeShadow:
	default:
		errs = append(errs, &FieldError{Field: "mode", Err: fmt.Errorf("%q must be enforce or shadow", c.Mode)})
	}
	if d := c.ShutdownDelay.Duration; d < 0 || d > maxShutdownDelay {
		errs = append(errs, &FieldError{Field: "shutdown_delay",
			Err: fmt.Errorf("%s must be between 0s and %s", d, maxShutdownDelay)})
	}
	return errs
}
