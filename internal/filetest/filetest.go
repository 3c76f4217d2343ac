// Package filetest holds the test helpers for reading the files a
// configuration names (internal/boundedfile): a FIFO to point a setting at,
// and a bound on how long a call may take, so a read that would hang fails
// its test instead of stalling the suite. Test code only.
package filetest

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Timeout bounds Prompt: reading a small file takes microseconds; a -race
// build on two busy cores is slow, a hang is for ever.
const Timeout = 5 * time.Second

// FIFO makes a named pipe in a fresh temporary directory and returns its
// path. Nothing ever writes to it: opening it for reading would block.
func FIFO(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatalf("mkfifo %s: %v", p, err)
	}
	return p
}

// Prompt calls f on its own goroutine and fails the test at once when f has
// not returned within Timeout (the goroutine is then left blocked: the test
// has failed and the process ends with the test binary).
func Prompt[T any](t testing.TB, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	select {
	case v := <-done:
		return v
	case <-timer.C:
		t.Fatalf("%s did not return within %v: it blocks", what, Timeout)
		panic("unreachable")
	}
}
