package authz

import (
	"errors"
	"strings"
	"testing"

	"github.com/agentos-authz/agentos-authz/internal/filetest"
)

// TestLoadRefusesNonRegularFiles: every file the configuration names is
// read bounded and never blocks (README.md, security table): a FIFO or a
// device is a prompt *FieldError naming the setting and the path.
func TestLoadRefusesNonRegularFiles(t *testing.T) {
	fifo := filetest.FIFO(t)
	jwt := "jwt:\n  algorithms: [HS256]\n  verification_keys: [" + hsKey + "]\n"
	tests := []struct {
		name  string
		yaml  string
		field string
		path  string
	}{
		{name: "key file FIFO", yaml: "jwt:\n  algorithms: [HS256]\n  verification_key_files: [" + fifo + "]\n",
			field: "jwt.verification_key_files[0]", path: fifo},
		{name: "key file /dev/zero", yaml: "jwt:\n  algorithms: [HS256]\n  verification_key_files: [/dev/zero]\n",
			field: "jwt.verification_key_files[0]", path: "/dev/zero"},
		{name: "JWKS file FIFO", yaml: "jwt:\n  jwks_file: " + fifo + "\n", field: "jwt.jwks_file", path: fifo},
		{name: "JWKS file /dev/zero", yaml: "jwt:\n  jwks_file: /dev/zero\n", field: "jwt.jwks_file", path: "/dev/zero"},
		{name: "JWKS CA file FIFO", yaml: "jwt:\n  jwks_url: https://idp.example/jwks.json\n  jwks_ca_file: " + fifo + "\n",
			field: "jwt.jwks_ca_file", path: fifo},
		{name: "signing key file FIFO", yaml: jwt + "upstream:\n  signing_key_file: " + fifo + "\n",
			field: "upstream.signing_key_file", path: fifo},
		{name: "signing key file /dev/zero", yaml: jwt + "upstream:\n  signing_key_file: /dev/zero\n",
			field: "upstream.signing_key_file", path: "/dev/zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := filetest.Prompt(t, "Load", func() error {
				_, err := Load([]byte(tt.yaml), env(nil), LoadOptions{})
				return err
			})
			if err == nil {
				t.Fatalf("Load(%q) succeeded, want a %s error", tt.yaml, tt.field)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("Load(%q) = %v, want a *FieldError for %s", tt.yaml, err, tt.field)
			}
			for _, w := range []string{tt.field + ": ", tt.path, "not a regular file"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load(%q) = %q\nwant it to contain %q", tt.yaml, err, w)
				}
			}
		})
	}
}
