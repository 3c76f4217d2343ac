package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/agentos-authz/agentos-authz/internal/boundedfile"
)

// clientTLS are check --server's TLS flags: the service's tls: section
// (README, "TLS") seen from the client side. None given: plaintext.
type clientTLS struct {
	ca, cert, key string
}

func (c *clientTLS) register(fset *flag.FlagSet) {
	fset.StringVar(&c.ca, "tls-ca", "", "with --server: PEM CA certificate(s) that verify the service's certificate (turns TLS on; default with --tls-cert: the system roots)")
	fset.StringVar(&c.cert, "tls-cert", "", "with --server: PEM client certificate, for a service with tls.client_ca_file (mutual TLS)")
	fset.StringVar(&c.key, "tls-key", "", "with --server: PEM private key of --tls-cert")
}

func (c *clientTLS) enabled() bool { return c.ca != "" || c.cert != "" || c.key != "" }

// check reports a flag combination that cannot work.
func (c *clientTLS) check(remote bool) error {
	switch {
	case c.enabled() && !remote:
		return errors.New("--tls-ca, --tls-cert and --tls-key apply to --server only")
	case c.cert != "" && c.key == "":
		return errors.New("--tls-cert needs --tls-key")
	case c.key != "" && c.cert == "":
		return errors.New("--tls-key needs --tls-cert")
	}
	return nil
}

// credentials are the gRPC transport credentials of the flags.
func (c *clientTLS) credentials() (credentials.TransportCredentials, error) {
	if !c.enabled() {
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.ca != "" {
		b, err := boundedfile.Read(c.ca, maxFlagFileBytes)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--tls-ca: %s holds no PEM certificate", c.ca)
		}
		cfg.RootCAs = pool
	}
	if c.cert != "" {
		pair, err := tls.LoadX509KeyPair(c.cert, c.key)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert, --tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(cfg), nil
}
