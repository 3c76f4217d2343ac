package authz

import (
	"errors"
	"strings"
	"testing"
)

func TestConfigOperate(t *testing.T) {
	base := "jwt:\n  algorithms: [HS256]\n  verification_keys: [" + hsKey + "]\n"
	tests := []struct {
		name      string
		yaml      string
		wantMode  string
		wantField string // a *FieldError for it, else success
	}{
		{name: "defaults", yaml: base, wantMode: ModeEnforce},
		{name: "shadow", yaml: base + "mode: shadow\n", wantMode: ModeShadow},
		{name: "unknown mode", yaml: base + "mode: dryrun\n", wantField: "mode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load([]byte(tc.yaml), nil, LoadOptions{})
			if tc.wantField != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tc.wantField {
					t.Fatalf("Load(%q) error = %v, want a *FieldError for %s", tc.yaml, err, tc.wantField)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load(%q) error = %v", tc.yaml, err)
			}
			if c.Mode != tc.wantMode || c.Shadow() != (tc.wantMode == ModeShadow) {
				t.Errorf("Load(%q) = mode %q, want %q", strings.TrimPrefix(tc.yaml, base), c.Mode, tc.wantMode)
			}
		})
	}
}
