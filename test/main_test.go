// Package test holds the black-box tests of agentos-authz: the conformance
// vectors, graceful shutdown and bad input, each against the real binary
// over gRPC on loopback. The binary is built once per test run from
// ../cmd/agentos-authz (with -race when the tests run with -race), or taken
// from AGENTOS_AUTHZ_BIN.
package test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/agentos-authz/agentos-authz/test/harness"
)

// built is the binary under test, built on first use and removed when the
// test binary exits.
var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// binary returns the path of the agentos-authz binary, failing the test
// with go build's output when it does not build.
func binary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if p := os.Getenv("AGENTOS_AUTHZ_BIN"); p != "" {
			if _, err := os.Stat(p); err != nil {
				built.err = fmt.Errorf("AGENTOS_AUTHZ_BIN: %w", err)
			}
			built.path = p
			return
		}
		built.dir, built.err = os.MkdirTemp("", "agentos-authz-bin-")
		if built.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		built.path, built.err = harness.BuildBinary(ctx, "../cmd/agentos-authz", built.dir, raceEnabled)
	})
	if built.err != nil {
		t.Fatalf("the binary under test is not available: %v", built.err)
	}
	return built.path
}
