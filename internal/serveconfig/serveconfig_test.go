package serveconfig

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentos-authz/agentos-authz/authz"
)

// hsKey is a security key, the simplest credential source authz accepts.
const hsKey = "test-hmac-secret-0123456789abcdef0123456789"

// loadSettings is Load's Settings.
func loadSettings(text []byte, lookupEnv func(string) (string, bool), flags Flags) (*Settings, error) {
	_, s, err := Load(text, lookupEnv, flags)
	return s, err
}

func ptr[T any](v T) *T { return &v }

// TestLoadPrecedence: defaults, then the file, then the flags
// (docs/CONTRACT.md §2); authz's part is loaded from the same file.
func TestLoadPrecedence(t *testing.T) {
	base := "security_key: " + hsKey + "\n"
	cfg, s, err := Load([]byte(base), nil, Flags{})
	if err != nil {
		t.Fatal(err)
	}
	if *s != defaults() || cfg.SecurityKey != hsKey {
		t.Errorf("Load(defaults) = %+v, security key set %v; want %+v", *s, cfg.SecurityKey == hsKey, defaults())
	}
	s, err = loadSettings([]byte(base+"grpc_addr: 127.0.0.1:1\nhttp_addr: off\nadmin_addr: 127.0.0.1:3\nshutdown_delay: 5s\n"), nil,
		Flags{GRPCAddr: ptr("127.0.0.1:9"), ShutdownDelay: ptr(8 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if s.GRPCAddr != "127.0.0.1:9" || s.HTTPAddr != HTTPAddrOff || s.AdminAddr != "127.0.0.1:3" || s.ShutdownDelay.Duration != 8*time.Second {
		t.Errorf("Load = %+v, want flag grpc and delay, file http and admin", *s)
	}
}

// TestLoadErrors: every problem of these settings is an *authz.FieldError
// naming its path, joined with authz's own problems of the same file; an
// unknown key is still one.
func TestLoadErrors(t *testing.T) {
	base := "security_key: " + hsKey + "\n"
	tests := []struct {
		name  string
		yaml  string
		flags Flags
		want  []string // fields, each required
	}{
		{name: "bad grpc addr", yaml: base + "grpc_addr: localhost\n", want: []string{"grpc_addr"}},
		{name: "bad flag addr", yaml: base, flags: Flags{AdminAddr: ptr("nope")}, want: []string{"admin_addr"}},
		{name: "negative delay", yaml: base + "shutdown_delay: -1s\n", want: []string{"shutdown_delay"}},
		{name: "negative delay flag", yaml: base, flags: Flags{ShutdownDelay: ptr(-time.Second)}, want: []string{"shutdown_delay"}},
		{name: "delay too long", yaml: base + "shutdown_delay: 1h\n", want: []string{"shutdown_delay"}},
		{name: "delay not a duration", yaml: base + "shutdown_delay: soon\n", want: []string{"shutdown_delay"}},
		{name: "unknown key", yaml: base + "grpc_adr: :1\n", want: []string{"grpc_adr"}},
		{name: "unknown tls key", yaml: base + "tls:\n  cert: x\n", want: []string{"tls.cert"}},
		{name: "both parts at once", yaml: "unmapped_routes: maybe\nhttp_addr: nohost\nhttp:\n  path_prefix: x\n",
			want: []string{"unmapped_routes", "jwt", "http_addr", "http.path_prefix"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Load([]byte(tc.yaml), nil, tc.flags)
			got := fields(err)
			for _, w := range tc.want {
				if !got[w] {
					t.Errorf("Load(%q) = %v\nwant a *authz.FieldError for %s", tc.yaml, err, w)
				}
			}
		})
	}
}

// fields are the fields of the *authz.FieldErrors err joins; a problem of
// another type is a field of its own, "(not a FieldError)".
func fields(err error) map[string]bool {
	out := make(map[string]bool)
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range j.Unwrap() {
				walk(c)
			}
			return
		}
		var fe *authz.FieldError
		if errors.As(e, &fe) {
			out[fe.Field] = true
		} else if e != nil {
			out["(not a FieldError)"] = true
		}
	}
	walk(err)
	return out
}

// TestHTTPSection: the http: section decodes strictly and validates, each
// problem naming its field.
func TestHTTPSection(t *testing.T) {
	tests := []struct {
		name       string
		yaml       string
		wantErr    []string // substrings, each required; none means valid
		wantPrefix string
	}{
		{name: "defaults", yaml: ""},
		{name: "prefix", yaml: "http:\n  path_prefix: /authz\n", wantPrefix: "/authz"},
		{name: "nested prefix", yaml: "http:\n  path_prefix: /ext/authz-v1\n", wantPrefix: "/ext/authz-v1"},
		{name: "empty section keeps defaults", yaml: "http:\n"},
		{name: "relative prefix", yaml: "http:\n  path_prefix: authz\n", wantErr: []string{`http.path_prefix: "authz" must start with "/"`}},
		{name: "trailing slash", yaml: "http:\n  path_prefix: /authz/\n", wantErr: []string{"http.path_prefix:", `must not end with "/"`}},
		{name: "root prefix", yaml: "http:\n  path_prefix: /\n", wantErr: []string{"http.path_prefix:", "leave path_prefix empty"}},
		{name: "query in prefix", yaml: "http:\n  path_prefix: /a?b\n", wantErr: []string{"http.path_prefix:", "plain path characters"}},
		{name: "escape in prefix", yaml: "http:\n  path_prefix: /a%2Fb\n", wantErr: []string{"http.path_prefix:"}},
		{name: "space in prefix", yaml: "http:\n  path_prefix: \"/a b\"\n", wantErr: []string{"http.path_prefix:"}},
		{name: "dot segment", yaml: "http:\n  path_prefix: /a/../b\n", wantErr: []string{"http.path_prefix:", `".."`}},
		{name: "empty segment", yaml: "http:\n  path_prefix: /a//b\n", wantErr: []string{"http.path_prefix:"}},
		{name: "unknown http field", yaml: "http:\n  prefix: /authz\n", wantErr: []string{"http.prefix: unknown field"}},
		{name: "http not a mapping", yaml: "http: /authz\n", wantErr: []string{"http: must be a mapping"}},
		{name: "prefix as list", yaml: "http:\n  path_prefix: [/a]\n", wantErr: []string{"http.path_prefix: must be a string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := loadSettings([]byte("security_key: "+hsKey+"\n"+tt.yaml), nil, Flags{})
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Load(%q) succeeded, want an error naming %q", tt.yaml, tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("Load(%q) = %q\nwant it to contain %q", tt.yaml, err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Load(%q) = %v", tt.yaml, err)
			}
			if s.HTTP.PathPrefix != tt.wantPrefix {
				t.Errorf("Load(%q) = path_prefix %q; want %q", tt.yaml, s.HTTP.PathPrefix, tt.wantPrefix)
			}
		})
	}
}
