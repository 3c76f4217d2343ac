package main

import (
	"net/http"
	"testing"
)

// TestServePprof checks that the Go profiles are served on the admin
// listener only with --pprof.
func TestServePprof(t *testing.T) {
	h := newHarness(t)
	_, pub := keyPair(t, h)
	cfg := writeConfig(t, keyConfig(pub, "ES256"))
	tests := []struct {
		name string
		args []string
		want int
	}{
		{name: "off by default", args: []string{"--config", cfg}, want: http.StatusNotFound},
		{name: "on with --pprof", args: []string{"--config", cfg, "--pprof"}, want: http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := startServe(t, newHarness(t), nil, 0, tc.args...)
			r.waitServing(t)
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/heap?debug=1"} {
				if got := r.get(t, path); got != tc.want {
					t.Errorf("GET %s = %d, want %d", path, got, tc.want)
				}
			}
			if got := r.get(t, "/healthz"); got != http.StatusOK {
				t.Errorf("GET /healthz = %d, want 200", got)
			}
		})
	}
}
