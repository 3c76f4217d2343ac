package authz

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigOperate(t *testing.T) {
	base := "jwt:\n  algorithms: [HS256]\n  verification_keys: [" + hsKey + "]\n"
	tests := []struct {
		name      string
		yaml      string
		flags     Flags
		wantMode  string
		wantDelay time.Duration
		wantField string // a *fieldError for it, else success
	}{
		{name: "defaults", yaml: base, wantMode: ModeEnforce},
		{name: "shadow with a delay", yaml: base + "mode: shadow\nshutdown_delay: 5s\n", wantMode: ModeShadow, wantDelay: 5 * time.Second},
		{name: "flag over the file", yaml: base + "shutdown_delay: 5s\n", flags: Flags{ShutdownDelay: ptr(8 * time.Second)}, wantMode: ModeEnforce, wantDelay: 8 * time.Second},
		{name: "unknown mode", yaml: base + "mode: dryrun\n", wantField: "mode"},
		{name: "negative delay", yaml: base + "shutdown_delay: -1s\n", wantField: "shutdown_delay"},
		{name: "negative delay flag", yaml: base, flags: Flags{ShutdownDelay: ptr(-time.Second)}, wantField: "shutdown_delay"},
		{name: "delay too long", yaml: base + "shutdown_delay: 1h\n", wantField: "shutdown_delay"},
		{name: "delay not a duration", yaml: base + "shutdown_delay: soon\n", wantField: "shutdown_delay"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load([]byte(tc.yaml), nil, tc.flags)
			if tc.wantField != "" {
				var fe *fieldError
				if !errors.As(err, &fe) || fe.Field != tc.wantField {
					t.Fatalf("Load(%q) error = %v, want a *fieldError for %s", tc.yaml, err, tc.wantField)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load(%q) error = %v", tc.yaml, err)
			}
			if c.Mode != tc.wantMode || c.ShutdownDelay.Duration != tc.wantDelay || c.Shadow() != (tc.wantMode == ModeShadow) {
				t.Errorf("Load(%q) = mode %q delay %s, want %q %s", strings.TrimPrefix(tc.yaml, base), c.Mode, c.ShutdownDelay, tc.wantMode, tc.wantDelay)
			}
		})
	}
}
