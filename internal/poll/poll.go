// Package poll is the one way the tests wait for something to happen:
// calling a condition again and again, briefly apart, until it holds or a
// deadline passes — never a sleep of a guessed length.
package poll

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// DefaultTimeout bounds For. Generous: a -race build on two busy cores is
// slow; every wait still ends as soon as its condition holds.
const DefaultTimeout = 30 * time.Second

// The pause between two calls grows from minInterval to maxInterval, so a
// quick condition is seen at once and a slow one costs little.
const (
	minInterval = 5 * time.Millisecond
	maxInterval = 50 * time.Millisecond
)

// ErrTimeout is wrapped by the error of Until when its timeout passes.
var ErrTimeout = errors.New("timed out")

// Until calls cond until it reports done, ctx ends or timeout passes
// (timeout 0: only ctx bounds it). cond returns done and, while not done, why
// not; done with a non-nil error stops at once with that error. The error
// after a timeout or ctx's end carries cond's last reason.
func Until(ctx context.Context, timeout time.Duration, cond func() (done bool, err error)) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, fmt.Errorf("%w after %v", ErrTimeout, timeout))
		defer cancel()
	}
	interval := minInterval
	timer := time.NewTimer(maxInterval)
	timer.Stop() // started by the first Reset; a stopped timer delivers nothing (Go 1.23)
	defer timer.Stop()
	for {
		done, err := cond()
		if done {
			return err
		}
		timer.Reset(interval)
		select {
		case <-ctx.Done():
			cause := context.Cause(ctx)
			if err != nil {
				return fmt.Errorf("%w (last: %v)", cause, err)
			}
			return cause
		case <-timer.C:
		}
		interval = min(2*interval, maxInterval)
	}
}

// For polls cond until it holds, failing t when DefaultTimeout passes or the
// test ends first; what names the awaited event in the failure.
func For(t testing.TB, what string, cond func() bool) {
	t.Helper()
	err := Until(t.Context(), DefaultTimeout, func() (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
