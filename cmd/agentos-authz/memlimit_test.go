package main

import (
	"runtime/debug"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	for _, tt := range []struct {
		size int
		want int64
	}{
		{size: 0, want: 28 << 20},
		{size: -1, want: 28 << 20},
		{size: 100000, want: 28<<20 + 100000*240}, // ≈ 50.9 MiB: RSS ≤ 64 MiB with a full cache
	} {
		if got := memoryLimit(tt.size); got != tt.want {
			t.Errorf("memoryLimit(%d) = %d, want %d", tt.size, got, tt.want)
		}
	}
}

func TestApplyMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })

	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	if got := applyMemoryLimit(env(map[string]string{"GOMEMLIMIT": "1GiB"}), 100000, false); got != 0 {
		t.Errorf("with GOMEMLIMIT set: applyMemoryLimit = %d, want 0 (the operator's limit wins)", got)
	}
	if cur := debug.SetMemoryLimit(-1); cur != prev {
		t.Errorf("with GOMEMLIMIT set the limit changed: %d, was %d", cur, prev)
	}
	want := memoryLimit(1000)
	if got := applyMemoryLimit(env(nil), 1000, false); got != want {
		t.Errorf("applyMemoryLimit = %d, want %d", got, want)
	}
	if cur := debug.SetMemoryLimit(-1); cur != want {
		t.Errorf("runtime limit = %d, want %d", cur, want)
	}
}

// TestIdentityMemoryLimit: identity tokens kept beside the cached tokens
// (docs/CONTRACT.md §9) raise the limit by their share.
func TestIdentityMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	none := func(string) (string, bool) { return "", false }
	want := memoryLimit(1000) + 1000*memLimitPerIdentityToken
	if got := applyMemoryLimit(none, 1000, true); got != want {
		t.Errorf("applyMemoryLimit with identity tokens = %d, want %d", got, want)
	}
	if cur := debug.SetMemoryLimit(-1); cur != want {
		t.Errorf("runtime limit = %d, want %d", cur, want)
	}
}
