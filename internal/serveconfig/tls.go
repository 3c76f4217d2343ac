package serveconfig

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/internal/boundedfile"
)

// TLSConfig is the tls: section (docs/CONTRACT.md §4): TLS, and mutual TLS
// with ClientCAFile, on the service's own listeners (gRPC, HTTP ext_authz
// and admin). It is listener configuration: the pipeline never reads it.
// All empty (the default) serves plaintext, for a mesh or a loopback
// sidecar that already protects the hop.
type TLSConfig struct {
	// CertFile is the PEM certificate chain the listeners present, leaf
	// first.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of the leaf certificate.
	KeyFile string `yaml:"key_file"`
	// ClientCAFile, when set, turns on mutual TLS: every client must
	// present a certificate that chains to one of these PEM CA
	// certificates, or the handshake fails.
	ClientCAFile string `yaml:"client_ca_file"`
	// AdminClientAuth is how the admin listener treats clients without a
	// certificate under mutual TLS: AdminClientAuthRequire (the default,
	// also when empty) or AdminClientAuthExceptHealthAndMetrics. It needs
	// ClientCAFile (README.md, "Operating in production").
	AdminClientAuth string `yaml:"admin_client_auth"`
}

// The values of tls.admin_client_auth.
const (
	// AdminClientAuthRequire: the admin listener, like the others, refuses
	// a handshake without a verified client certificate.
	AdminClientAuthRequire = "require"
	// AdminClientAuthExceptHealthAndMetrics: the admin listener completes
	// a handshake without a client certificate (one that is presented must
	// still verify), and then answers only GET /healthz, /readyz and
	// /metrics to such a client, for kubelet's HTTPS probes and a
	// Prometheus without a client certificate; the policy API and
	// /debug/pprof/ keep requiring one. The name says what is let through,
	// so a reader of the configuration sees the exception without the docs.
	AdminClientAuthExceptHealthAndMetrics = "except_health_and_metrics"
)

// Enabled reports whether the listeners serve TLS.
func (t *TLSConfig) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// MutualTLS reports whether client certificates are required.
func (t *TLSConfig) MutualTLS() bool { return t.ClientCAFile != "" }

// AdminHealthAndMetricsOpen reports whether the admin listener answers
// GET /healthz, /readyz and /metrics to a client without a certificate
// under mutual TLS (tls.admin_client_auth: except_health_and_metrics).
func (t *TLSConfig) AdminHealthAndMetricsOpen() bool {
	return t.MutualTLS() && t.AdminClientAuth == AdminClientAuthExceptHealthAndMetrics
}

// check validates the section and reads its files, so that `validate` and
// a start with a missing, unreadable or mismatched file fail with the field
// named; each problem is a *FieldError.
func (t *TLSConfig) check() []error {
	var errs []error
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		errs = append(errs, &authz.FieldError{Field: "tls.key_file", Err: errors.New("is required with tls.cert_file")})
	case t.KeyFile != "" && t.CertFile == "":
		errs = append(errs, &authz.FieldError{Field: "tls.cert_file", Err: errors.New("is required with tls.key_file")})
	case t.Enabled():
		if _, err := t.LoadKeyPair(); err != nil {
			errs = append(errs, err)
		}
	}
	if t.ClientCAFile != "" {
		if !t.Enabled() {
			errs = append(errs, &authz.FieldError{Field: "tls.client_ca_file",
				Err: errors.New("needs tls.cert_file and tls.key_file: mutual TLS is TLS with client certificates")})
		}
		if _, err := t.LoadClientCAs(); err != nil {
			errs = append(errs, err)
		}
	}
	switch t.AdminClientAuth {
	case "", AdminClientAuthRequire, AdminClientAuthExceptHealthAndMetrics:
		if t.AdminClientAuth != "" && t.ClientCAFile == "" {
			errs = append(errs, &authz.FieldError{Field: "tls.admin_client_auth",
				Err: fmt.Errorf("%q needs tls.client_ca_file: it says how the admin listener treats clients without a certificate under mutual TLS", t.AdminClientAuth)})
		}
	default:
		errs = append(errs, &authz.FieldError{Field: "tls.admin_client_auth",
			Err: fmt.Errorf("%q must be %s or %s", t.AdminClientAuth, AdminClientAuthRequire, AdminClientAuthExceptHealthAndMetrics)})
	}
	return errs
}

// maxTLSFileBytes bounds each TLS file: a certificate chain, a key or a
// CA bundle (even a whole system one is a few hundred KiB).
const maxTLSFileBytes = 4 << 20

// LoadKeyPair reads CertFile and KeyFile and checks that the key is the
// certificate's. The error is a *FieldError naming the file at fault. It
// is called at start and again whenever the files change (cmd reloads
// certificates without a restart).
func (t *TLSConfig) LoadKeyPair() (tls.Certificate, error) {
	certPEM, err := boundedfile.Read(t.CertFile, maxTLSFileBytes)
	if err != nil {
		return tls.Certificate{}, &authz.FieldError{Field: "tls.cert_file", Err: fileError(err)}
	}
	if err := checkCertificates(certPEM); err != nil {
		return tls.Certificate{}, &authz.FieldError{Field: "tls.cert_file", Err: fmt.Errorf("%s: %w", t.CertFile, err)}
	}
	keyPEM, err := boundedfile.Read(t.KeyFile, maxTLSFileBytes)
	if err != nil {
		return tls.Certificate{}, &authz.FieldError{Field: "tls.key_file", Err: fileError(err)}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err == nil {
		return pair, nil
	}
	// X509KeyPair's error does not say which file is at fault: the key
	// either does not parse or is not the certificate's.
	if kerr := checkPrivateKey(keyPEM); kerr != nil {
		return tls.Certificate{}, &authz.FieldError{Field: "tls.key_file", Err: fmt.Errorf("%s: %w", t.KeyFile, kerr)}
	}
	return tls.Certificate{}, &authz.FieldError{Field: "tls.key_file",
		Err: fmt.Errorf("%s does not match the certificate of tls.cert_file (%s)", t.KeyFile, t.CertFile)}
}

// LoadClientCAs reads ClientCAFile into a pool; the error is a *FieldError.
func (t *TLSConfig) LoadClientCAs() (*x509.CertPool, error) {
	b, err := boundedfile.Read(t.ClientCAFile, maxTLSFileBytes)
	if err != nil {
		return nil, &authz.FieldError{Field: "tls.client_ca_file", Err: fileError(err)}
	}
	if err := checkCertificates(b); err != nil {
		return nil, &authz.FieldError{Field: "tls.client_ca_file", Err: fmt.Errorf("%s: %w", t.ClientCAFile, err)}
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return pool, nil
}

// fileError words an os error without Go's "open " prefix noise.
func fileError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("cannot read %s: %w", pe.Path, pe.Err)
	}
	return err
}

// checkCertificates requires at least one PEM certificate, every
// CERTIFICATE block parsing, and nothing else (a private key pasted into
// a certificate file would otherwise be served as nothing, or leak).
func checkCertificates(b []byte) error {
	n := 0
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("holds a %q PEM block; only CERTIFICATE blocks belong here", block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("certificate %d does not parse: %w", n+1, err)
		}
		n++
	}
	if n == 0 {
		return errors.New("no PEM certificate")
	}
	return nil
}

// checkPrivateKey reports why keyPEM is not a usable private key, nil
// when it is one.
func checkPrivateKey(keyPEM []byte) error {
	for {
		var block *pem.Block
		block, keyPEM = pem.Decode(keyPEM)
		if block == nil {
			return errors.New("no PEM private key")
		}
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			continue
		}
		if strings.Contains(block.Type, "ENCRYPTED") {
			return errors.New("the private key is encrypted; give it unencrypted (a Secret volume protects it)")
		}
		if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
			return nil
		}
		if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
			return nil
		}
		if _, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
			return nil
		}
		return fmt.Errorf("the %q block does not parse as a private key", block.Type)
	}
}
