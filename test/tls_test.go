package test

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
	"github.com/agentos-authz/agentos-authz/internal/poll"
	"github.com/agentos-authz/agentos-authz/internal/testpki"
	authzv1 "github.com/agentos-authz/agentos-authz/proto/agentos/authz/v1"
	"github.com/agentos-authz/agentos-authz/test/harness"
)

// tlsClient is the client side of the service's TLS (README.md, tls:
// section): it trusts ca and presents client (nil: no certificate), even
// to a server that names other CAs, as a misconfigured client would.
func tlsClient(t *testing.T, ca *testpki.CA, client *testpki.Pair) *tls.Config {
	t.Helper()
	c := &tls.Config{RootCAs: ca.Pool()}
	if client != nil {
		cert := client.TLSCertificate(t)
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	return c
}

// httpsGet sends GET url over TLS with c and, when token is not empty,
// "Authorization: Bearer <token>"; it returns the status or the error.
func httpsGet(t *testing.T, c *tls.Config, url, token string) (int, error) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: c, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// servedCommonName is the common name of the certificate addr presents.
func servedCommonName(t *testing.T, addr string, ca *testpki.CA, client *testpki.Pair) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, tlsClient(t, ca, client))
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// replaceFile writes b to path as an operator's tooling does: a new file
// renamed over the old one, so no reader ever sees half of it.
func replaceFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path+".new", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// TestTLS runs the real binary with the tls: section (README.md, "Operating
// in production"): mutual TLS on every listener, with
// tls.admin_client_auth: except_health_and_metrics on the admin listener.
// A client with a certificate gets decisions over gRPC and HTTPS; a client
// without one, or speaking TLS 1.1, is refused at the handshake; /readyz
// answers without a certificate while the policy API refuses; a
// certificate replaced on disk is served without a restart.
func TestTLS(t *testing.T) {
	bin := binary(t)
	ca := testpki.NewCA(t, "agentos-authz test CA")
	first := ca.Server(t, "first")
	envoy := ca.Client(t, "envoy")
	dir := t.TempDir()
	certFile := testpki.WriteFile(t, dir, "tls.crt", first.CertPEM)
	keyFile := testpki.WriteFile(t, dir, "tls.key", first.KeyPEM)
	caFile := testpki.WriteFile(t, dir, "ca.crt", ca.PEM)

	secret := strings.Repeat("t", 48)
	keys := conformance.NewKeys(map[string][]byte{"hs.secret": []byte(secret)})
	minter := conformance.Minter{Keys: keys}
	hsFile := testpki.WriteFile(t, dir, "hs.secret", []byte(secret))
	cfg := "os_id: test-os\njwt:\n  algorithms: [HS256]\n  verification_key_files: [" + hsFile + "]\n" +
		"tls:\n  cert_file: " + certFile + "\n  key_file: " + keyFile + "\n  client_ca_file: " + caFile + "\n" +
		"  admin_client_auth: except_health_and_metrics\n"
	cfgPath := testpki.WriteFile(t, dir, "config.yaml", []byte(cfg))

	srv, err := harness.Start(t.Context(), harness.Options{
		Binary: bin, ConfigPath: cfgPath, Args: []string{"--http-addr", "127.0.0.1:0"},
		TLS: tlsClient(t, ca, &envoy),
	})
	if err != nil {
		t.Fatalf("the server did not start with mutual TLS: %v", err)
	}
	t.Cleanup(srv.Kill)
	tok, err := minter.Mint(tokenSpec("alice", "agents:read"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("gRPC decisions with a client certificate", func(t *testing.T) {
		tests := []struct {
			name   string
			tokens map[string]string
			want   int
		}{
			{name: "valid token", tokens: map[string]string{"token": tok}, want: http.StatusOK},
			{name: "missing token", tokens: nil, want: http.StatusUnauthorized},
		}
		for _, tc := range tests {
			b, err := harness.BuildRequest(conformance.Request{Method: "GET", Path: "/agents"}, tc.tokens)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Check(t.Context(), b.Check)
			if err != nil {
				t.Fatalf("Check(%s, %s) over mutual TLS: %v", b.Describe(), tc.name, err)
			}
			o := harness.Interpret(b, resp)
			if o.Status != tc.want || len(o.Problems) > 0 {
				t.Errorf("Check(%s, %s) = %v %q, want %d", b.Describe(), tc.name, o, o.Problems, tc.want)
			}
		}
	})

	t.Run("HTTP ext_authz over HTTPS with a client certificate", func(t *testing.T) {
		for _, tc := range []struct {
			token string
			want  int
		}{
			{token: tok, want: http.StatusOK},
			{token: "", want: http.StatusUnauthorized},
		} {
			code, err := httpsGet(t, tlsClient(t, ca, &envoy), "https://"+srv.HTTPAddr+"/agents", tc.token)
			if err != nil || code != tc.want {
				t.Errorf("GET https://%s/agents (token %v) = %d, %v; want %d", srv.HTTPAddr, tc.token != "", code, err, tc.want)
			}
		}
	})

	t.Run("no client certificate refused on the ext_authz listeners", func(t *testing.T) {
		conn, err := harness.DialTLS(srv.GRPCAddr, tlsClient(t, ca, nil))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		b, err := harness.BuildRequest(conformance.Request{Method: "GET", Path: "/agents"}, map[string]string{"token": tok})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := authv3.NewAuthorizationClient(conn).Check(t.Context(), b.Check); status.Code(err) != codes.Unavailable {
			t.Errorf("gRPC Check without a client certificate = %v, want the handshake refused (Unavailable)", err)
		}
		if code, err := httpsGet(t, tlsClient(t, ca, nil), "https://"+srv.HTTPAddr+"/agents", tok); err == nil {
			t.Errorf("HTTPS check without a client certificate = %d, want the handshake refused", code)
		}
		stranger := testpki.NewCA(t, "another CA").Client(t, "envoy")
		if code, err := httpsGet(t, tlsClient(t, ca, &stranger), "https://"+srv.HTTPAddr+"/agents", tok); err == nil {
			t.Errorf("HTTPS check with a certificate of another CA = %d, want the handshake refused", code)
		}
	})

	t.Run("TLS 1.1 refused", func(t *testing.T) {
		for name, addr := range map[string]string{"grpc": srv.GRPCAddr, "http": srv.HTTPAddr, "admin": srv.AdminAddr} {
			c := tlsClient(t, ca, &envoy)
			c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
			if conn, err := tls.Dial("tcp", addr, c); err == nil {
				conn.Close()
				t.Errorf("%s: a TLS 1.1 handshake succeeded, want TLS 1.2 at least", name)
			}
		}
	})

	t.Run("admin: probes open, policy API closed without a certificate", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			if code, err := httpsGet(t, tlsClient(t, ca, nil), "https://"+srv.AdminAddr+path, ""); err != nil || code != http.StatusOK {
				t.Errorf("GET %s without a client certificate = %d, %v; want 200", path, code, err)
			}
		}
		for _, tc := range []struct {
			name   string
			client *testpki.Pair
			want   codes.Code
		}{
			{name: "without a certificate", client: nil, want: codes.Unauthenticated},
			{name: "with a certificate", client: &envoy, want: codes.OK},
		} {
			conn, err := harness.DialTLS(srv.AdminAddr, tlsClient(t, ca, tc.client))
			if err != nil {
				t.Fatal(err)
			}
			_, err = authzv1.NewPolicyServiceClient(conn).ListRoutes(t.Context(), &authzv1.ListRoutesRequest{})
			conn.Close()
			if status.Code(err) != tc.want {
				t.Errorf("policy API ListRoutes %s = %v, want %v", tc.name, err, tc.want)
			}
		}
	})

	t.Run("certificate replaced on disk is served", func(t *testing.T) {
		second := ca.Server(t, "second")
		// The key first: until the certificate follows, the pair does not
		// match and the service keeps serving the first one.
		replaceFile(t, keyFile, second.KeyPEM)
		if got := servedCommonName(t, srv.GRPCAddr, ca, &envoy); got != "first" {
			t.Errorf("with the new key beside the old certificate, gRPC serves %q, want first", got)
		}
		replaceFile(t, certFile, second.CertPEM)
		for name, addr := range map[string]string{"grpc": srv.GRPCAddr, "http": srv.HTTPAddr, "admin": srv.AdminAddr} {
			poll.For(t, name+" serving the replaced certificate", func() bool {
				return servedCommonName(t, addr, ca, &envoy) == "second"
			})
		}
		// A new connection gets decisions under the new certificate.
		conn, err := harness.DialTLS(srv.GRPCAddr, tlsClient(t, ca, &envoy))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		b, err := harness.BuildRequest(conformance.Request{Method: "GET", Path: "/agents"}, map[string]string{"token": tok})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := authv3.NewAuthorizationClient(conn).Check(t.Context(), b.Check)
		if err != nil || harness.Interpret(b, resp).Status != http.StatusOK {
			t.Errorf("Check after the replacement = %v, %v; want 200", resp.GetStatus(), err)
		}
		if !strings.Contains(srv.Output(), "TLS certificate reloaded") {
			t.Error(`no "TLS certificate reloaded" log line`)
		}
	})

	noPanics(t, srv)
	if out := srv.Output(); strings.Contains(out, "PRIVATE KEY") || strings.Contains(out, tok) || strings.Contains(out, secret) {
		t.Error("the server's output holds key material or the token")
	}
}
