package poll

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestUntilHolds(t *testing.T) {
	var n atomic.Int32
	err := Until(t.Context(), DefaultTimeout, func() (bool, error) {
		return n.Add(1) == 3, nil
	})
	if err != nil || n.Load() != 3 {
		t.Fatalf("Until = %v after %d calls, want nil after 3", err, n.Load())
	}
}

func TestUntilStops(t *testing.T) {
	stop := errors.New("gave up")
	calls := 0
	err := Until(t.Context(), DefaultTimeout, func() (bool, error) {
		calls++
		return true, stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("Until = %v after %d calls, want %v after 1", err, calls, stop)
	}
}

func TestUntilTimeout(t *testing.T) {
	start := time.Now()
	err := Until(t.Context(), 30*time.Millisecond, func() (bool, error) {
		return false, errors.New("not yet")
	})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Until = %v, want %v", err, ErrTimeout)
	}
	if got := err.Error(); got != "timed out after 30ms (last: not yet)" {
		t.Errorf("error = %q, want the timeout and the last reason", got)
	}
	if time.Since(start) < 30*time.Millisecond {
		t.Errorf("Until gave up after %v, before its timeout", time.Since(start))
	}
}

func TestUntilContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	err := Until(ctx, 0, func() (bool, error) {
		calls++
		if calls == 2 {
			cancel()
		}
		return false, nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Until = %v, want %v", err, context.Canceled)
	}
}

func TestFor(t *testing.T) {
	var n atomic.Int32
	For(t, "the third call", func() bool { return n.Add(1) >= 3 })
	if n.Load() != 3 {
		t.Errorf("cond called %d times, want 3", n.Load())
	}
}
