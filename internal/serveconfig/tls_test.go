package serveconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/internal/filetest"
	"github.com/agentos-authz/agentos-authz/internal/testpki"
)

// TestTLSSection: the tls: section is read and checked, files included;
// every problem names its field.
func TestTLSSection(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test CA")
	server := ca.Server(t, "agentos-authz")
	other := ca.Server(t, "other")
	cert := testpki.WriteFile(t, dir, "tls.crt", server.CertPEM)
	key := testpki.WriteFile(t, dir, "tls.key", server.KeyPEM)
	otherKey := testpki.WriteFile(t, dir, "other.key", other.KeyPEM)
	caFile := testpki.WriteFile(t, dir, "ca.crt", ca.PEM)
	garbage := testpki.WriteFile(t, dir, "garbage.pem", []byte("not PEM at all\n"))
	keyAsCert := testpki.WriteFile(t, dir, "key-as-cert.pem", server.KeyPEM)
	missing := filepath.Join(dir, "missing.pem")
	unreadable := filepath.Join(dir, "a-directory")
	if err := os.Mkdir(unreadable, 0o700); err != nil {
		t.Fatal(err)
	}
	fifo := filetest.FIFO(t)
	// A Kubernetes Secret volume: each key a symlink to a regular file.
	certLink, keyLink := filepath.Join(dir, "cert-link"), filepath.Join(dir, "key-link")
	for link, target := range map[string]string{certLink: cert, keyLink: key} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	base := "security_key: " + hsKey + "\n"
	section := func(kv ...string) string {
		s := base + "tls:\n"
		for i := 0; i+1 < len(kv); i += 2 {
			s += "  " + kv[i] + ": " + strconv.Quote(kv[i+1]) + "\n"
		}
		return s
	}

	ok := []struct {
		name          string
		yaml          string
		wantTLS       bool
		wantMutual    bool
		wantAdminOpen bool
	}{
		{name: "no section", yaml: base},
		{name: "tls", yaml: section("cert_file", cert, "key_file", key), wantTLS: true},
		{name: "tls through symlinks", yaml: section("cert_file", certLink, "key_file", keyLink), wantTLS: true},
		{name: "mutual tls", yaml: section("cert_file", cert, "key_file", key, "client_ca_file", caFile), wantTLS: true, wantMutual: true},
		{name: "admin requires client certificates", yaml: section("cert_file", cert, "key_file", key, "client_ca_file", caFile, "admin_client_auth", "require"),
			wantTLS: true, wantMutual: true},
		{name: "admin health and metrics open", yaml: section("cert_file", cert, "key_file", key, "client_ca_file", caFile, "admin_client_auth", "except_health_and_metrics"),
			wantTLS: true, wantMutual: true, wantAdminOpen: true},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadSettings([]byte(tc.yaml), nil, Flags{})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.TLS.Enabled() != tc.wantTLS || c.TLS.MutualTLS() != tc.wantMutual || c.TLS.AdminHealthAndMetricsOpen() != tc.wantAdminOpen {
				t.Errorf("Enabled, MutualTLS, AdminHealthAndMetricsOpen = %v, %v, %v; want %v, %v, %v",
					c.TLS.Enabled(), c.TLS.MutualTLS(), c.TLS.AdminHealthAndMetricsOpen(), tc.wantTLS, tc.wantMutual, tc.wantAdminOpen)
			}
		})
	}

	bad := []struct {
		name string
		yaml string
		want []string
	}{
		{name: "cert without key", yaml: section("cert_file", cert), want: []string{"tls.key_file: is required with tls.cert_file"}},
		{name: "key without cert", yaml: section("key_file", key), want: []string{"tls.cert_file: is required with tls.key_file"}},
		{name: "client ca alone", yaml: section("client_ca_file", caFile), want: []string{"tls.client_ca_file: needs tls.cert_file and tls.key_file"}},
		{name: "missing cert", yaml: section("cert_file", missing, "key_file", key), want: []string{"tls.cert_file: cannot read " + missing}},
		{name: "unreadable cert", yaml: section("cert_file", unreadable, "key_file", key), want: []string{"tls.cert_file: cannot read " + unreadable}},
		{name: "cert FIFO", yaml: section("cert_file", fifo, "key_file", key), want: []string{"tls.cert_file: cannot read " + fifo + ": not a regular file"}},
		{name: "cert /dev/zero", yaml: section("cert_file", "/dev/zero", "key_file", key), want: []string{"tls.cert_file: cannot read /dev/zero: not a regular file"}},
		{name: "key FIFO", yaml: section("cert_file", cert, "key_file", fifo), want: []string{"tls.key_file: cannot read " + fifo + ": not a regular file"}},
		{name: "client ca FIFO", yaml: section("cert_file", cert, "key_file", key, "client_ca_file", fifo), want: []string{"tls.client_ca_file: cannot read " + fifo + ": not a regular file"}},
		{name: "missing key", yaml: section("cert_file", cert, "key_file", missing), want: []string{"tls.key_file: cannot read " + missing}},
		{name: "cert not PEM", yaml: section("cert_file", garbage, "key_file", key), want: []string{"tls.cert_file: " + garbage + ": no PEM certificate"}},
		{name: "key in the cert file", yaml: section("cert_file", keyAsCert, "key_file", key), want: []string{"tls.cert_file:", `"PRIVATE KEY" PEM block`}},
		{name: "key not PEM", yaml: section("cert_file", cert, "key_file", garbage), want: []string{"tls.key_file: " + garbage + ": no PEM private key"}},
		{name: "key of another cert", yaml: section("cert_file", cert, "key_file", otherKey), want: []string{"tls.key_file: " + otherKey + " does not match the certificate of tls.cert_file"}},
		{name: "client ca missing", yaml: section("cert_file", cert, "key_file", key, "client_ca_file", missing), want: []string{"tls.client_ca_file: cannot read"}},
		{name: "client ca not PEM", yaml: section("cert_file", cert, "key_file", key, "client_ca_file", garbage), want: []string{"tls.client_ca_file:", "no PEM certificate"}},
		{name: "unknown field", yaml: base + "tls:\n  ca_file: x\n", want: []string{"tls.ca_file: unknown field"}},
		{name: "admin setting without mutual tls", yaml: section("cert_file", cert, "key_file", key, "admin_client_auth", "except_health_and_metrics"),
			want: []string{`tls.admin_client_auth: "except_health_and_metrics" needs tls.client_ca_file`}},
		{name: "admin require without mutual tls", yaml: section("cert_file", cert, "key_file", key, "admin_client_auth", "require"),
			want: []string{`tls.admin_client_auth: "require" needs tls.client_ca_file`}},
		{name: "admin setting unknown", yaml: section("cert_file", cert, "key_file", key, "client_ca_file", caFile, "admin_client_auth", "optional"),
			want: []string{`tls.admin_client_auth: "optional" must be require or except_health_and_metrics`}},
		{name: "admin setting misspelt", yaml: section("cert_file", cert, "key_file", key, "client_ca_file", caFile, "admin_client_auth", "Require"),
			want: []string{`tls.admin_client_auth: "Require" must be require or except_health_and_metrics`}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			// Bounded: a FIFO or a device must be refused, not read for ever.
			err := filetest.Prompt(t, "Load", func() error {
				_, err := loadSettings([]byte(tc.yaml), nil, Flags{})
				return err
			})
			if err == nil {
				t.Fatalf("Load(%q) = nil error, want %q", tc.yaml, tc.want)
			}
			var fe *authz.FieldError
			if !errors.As(err, &fe) {
				t.Errorf("Load error %v is not a *FieldError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load error = %q, want it to hold %q", err, w)
				}
			}
		})
	}
}

// TestTracingSection: the tracing: section's defaults and its errors.
func TestTracingSection(t *testing.T) {
	base := "security_key: " + hsKey + "\n"
	c, err := loadSettings([]byte(base), nil, Flags{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Tracing.Enabled() || c.Tracing.Ratio() != DefaultSampleRatio {
		t.Errorf("default tracing: Enabled %v, Ratio %v; want off, %v", c.Tracing.Enabled(), c.Tracing.Ratio(), DefaultSampleRatio)
	}
	c, err = loadSettings([]byte(base+"tracing:\n  otlp_endpoint: collector:4317\n  sample_ratio: 0.25\n  insecure: true\n"), nil, Flags{})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Tracing.Enabled() || c.Tracing.Ratio() != 0.25 || !c.Tracing.Insecure {
		t.Errorf("tracing = %+v, want enabled, 0.25, insecure", c.Tracing)
	}
	zero, err := loadSettings([]byte(base+"tracing:\n  otlp_endpoint: collector:4317\n  sample_ratio: 0\n"), nil, Flags{})
	if err != nil {
		t.Fatal(err)
	}
	if zero.Tracing.Ratio() != 0 {
		t.Errorf("sample_ratio: 0 gives Ratio %v, want 0 (not the default)", zero.Tracing.Ratio())
	}

	bad := []struct {
		name, yaml string
		want       string
	}{
		{name: "ratio above 1", yaml: "tracing:\n  otlp_endpoint: c:4317\n  sample_ratio: 1.5\n", want: "tracing.sample_ratio: 1.5 must be between 0 and 1"},
		{name: "ratio negative", yaml: "tracing:\n  otlp_endpoint: c:4317\n  sample_ratio: -0.1\n", want: "tracing.sample_ratio: -0.1 must be between 0 and 1"},
		{name: "ratio not a number", yaml: "tracing:\n  otlp_endpoint: c:4317\n  sample_ratio: half\n", want: "tracing.sample_ratio"},
		{name: "scheme", yaml: "tracing:\n  otlp_endpoint: http://c:4317\n", want: "tracing.otlp_endpoint: \"http://c:4317\" must be host:port without a scheme"},
		{name: "no port", yaml: "tracing:\n  otlp_endpoint: collector\n", want: "tracing.otlp_endpoint: \"collector\" is not host:port"},
		{name: "settings without endpoint", yaml: "tracing:\n  sample_ratio: 0.5\n", want: "tracing.otlp_endpoint: is empty, so tracing is off"},
		{name: "unknown field", yaml: "tracing:\n  endpoint: c:4317\n", want: "tracing.endpoint: unknown field"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadSettings([]byte(base+tc.yaml), nil, Flags{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load(%q) error = %v, want %q", tc.yaml, err, tc.want)
			}
		})
	}
}
