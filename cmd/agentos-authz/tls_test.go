package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/internal/poll"
	"github.com/agentos-authz/agentos-authz/internal/serveconfig"
	"github.com/agentos-authz/agentos-authz/internal/testpki"
	authzv1 "github.com/agentos-authz/agentos-authz/proto/agentos/authz/v1"
)

// tlsServer is a serve running with a tls: section, and what its clients
// need.
type tlsServer struct {
	*running
	httpAddr string
	ca       *testpki.CA
	token    string // allowed on GET /agents
}

// httpListenAddr finds http_addr in the "listening" log line.
func httpListenAddr(logs string) string {
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line struct {
			Msg  string `json:"msg"`
			HTTP string `json:"http_addr"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
			return line.HTTP
		}
	}
	return ""
}

// startTLSServe runs serve with tls (the tls: section) on all three
// listeners; ca signed its certificate. The returned server's conn is a
// gRPC client presenting client (nil: no certificate).
func startTLSServe(t *testing.T, ca *testpki.CA, tlsSection map[string]string, client *testpki.Pair, args ...string) *tlsServer {
	t.Helper()
	h := newHarness(t)
	prefix, pub := keyPair(t, h)
	tok := h.mint("--key", prefix+".key.pem", "--alg", "ES256", "--aud", "test-os", "--sub", "alice", "--scopes", "agents:read")
	cfg := keyConfig(pub, "ES256")
	cfg["tls"] = tlsSection
	path := writeConfig(t, cfg)
	r := startServe(t, newHarness(t), nil, 0, append([]string{"--config", path, "--http-addr", "127.0.0.1:0"}, args...)...)
	s := &tlsServer{running: r, httpAddr: httpListenAddr(r.h.stderr.String()), ca: ca, token: tok}
	r.conn = s.grpcConn(t, client)
	r.waitServing(t)
	return s
}

// clientConfig trusts the server's CA and presents client, if any,
// whichever CAs the server asks for: crypto/tls would otherwise withhold a
// certificate of another CA, and the test would not see it refused.
func (s *tlsServer) clientConfig(t *testing.T, client *testpki.Pair) *tls.Config {
	t.Helper()
	c := &tls.Config{RootCAs: s.ca.Pool()}
	if client != nil {
		cert := client.TLSCertificate(t)
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	return c
}

func (s *tlsServer) grpcConn(t *testing.T, client *testpki.Pair) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(s.clientConfig(t, client))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// httpsGet sends GET url (with the allowed token on the ext_authz
// listener) over TLS presenting client; it returns the status or the error.
func (s *tlsServer) httpsGet(t *testing.T, url string, client *testpki.Pair) (int, error) {
	t.Helper()
	code, _, err := s.httpsDo(t, http.MethodGet, url, client)
	return code, err
}

// httpsDo sends method url with the allowed token over TLS presenting
// client (nil: none), by HTTP/2 as a proxy or Prometheus would; it returns
// the status and body, or the error.
func (s *tlsServer) httpsDo(t *testing.T, method, url string, client *testpki.Pair) (int, string, error) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: s.clientConfig(t, client), ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, "", err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, "", err
	}
	if resp.ProtoMajor != 2 {
		// HTTP/2 by ALPN: the admin listener's policy API is gRPC.
		t.Errorf("%s %s over TLS spoke %s, want HTTP/2", method, url, resp.Proto)
	}
	return resp.StatusCode, string(body), nil
}

// checkAll runs the three listeners' calls with client (nil: no client
// certificate) and returns their errors by listener name.
func (s *tlsServer) checkAll(t *testing.T, client *testpki.Pair) map[string]error {
	t.Helper()
	errs := map[string]error{}
	conn := s.grpcConn(t, client)
	resp, err := authv3Check(t.Context(), conn, s.token)
	switch {
	case err != nil:
		errs["grpc"] = err
	case codes.Code(resp) != codes.OK:
		t.Errorf("gRPC Check over TLS = %v, want OK", codes.Code(resp))
	}
	for name, url := range map[string]string{
		"http":  "https://" + s.httpAddr + "/agents",
		"admin": "https://" + s.adminAddr + "/readyz",
	} {
		code, err := s.httpsGet(t, url, client)
		switch {
		case err != nil:
			errs[name] = err
		case code != http.StatusOK:
			t.Errorf("GET %s over TLS = %d, want 200", url, code)
		}
	}
	return errs
}

// authv3Check sends GET /agents with the token over conn and returns the
// gRPC status code of the answer.
func authv3Check(ctx context.Context, conn *grpc.ClientConn, token string) (int32, error) {
	r := &running{conn: conn}
	resp, err := r.check(ctx, "GET", "/agents", "Bearer "+token)
	return resp.GetStatus().GetCode(), err
}

// pkiFiles writes a CA, a server certificate for 127.0.0.1 and its key.
func pkiFiles(t *testing.T) (ca *testpki.CA, dir, cert, key, caFile string) {
	t.Helper()
	ca = testpki.NewCA(t, "agentos-authz test CA")
	server := ca.Server(t, "agentos-authz")
	dir = t.TempDir()
	return ca, dir,
		testpki.WriteFile(t, dir, "tls.crt", server.CertPEM),
		testpki.WriteFile(t, dir, "tls.key", server.KeyPEM),
		testpki.WriteFile(t, dir, "ca.crt", ca.PEM)
}

// dialsTLS11 reports whether a TLS 1.1 client completes a handshake with addr.
func dialsTLS11(t *testing.T, addr string, ca *testpki.CA) error {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err == nil {
		conn.Close()
	}
	return err
}

func TestServeTLS(t *testing.T) {
	ca, _, cert, key, _ := pkiFiles(t)
	s := startTLSServe(t, ca, map[string]string{"cert_file": cert, "key_file": key}, nil)

	t.Run("every listener over TLS", func(t *testing.T) {
		for name, err := range s.checkAll(t, nil) {
			t.Errorf("%s over TLS: %v", name, err)
		}
	})
	t.Run("a denial is still an answer", func(t *testing.T) {
		resp, err := s.check(t.Context(), "POST", "/agents/web/runs", "Bearer "+s.token)
		if err != nil || codes.Code(resp.GetStatus().GetCode()) != codes.PermissionDenied {
			t.Errorf("Check(POST /agents/web/runs) = %v, %v; want PermissionDenied", resp.GetStatus(), err)
		}
	})
	t.Run("plaintext gRPC refused", func(t *testing.T) {
		conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err == nil {
			t.Error("plaintext health check on the TLS gRPC listener succeeded")
		}
	})
	t.Run("plaintext HTTP refused", func(t *testing.T) {
		for _, addr := range []string{s.httpAddr, s.adminAddr} {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/readyz", nil)
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("plaintext GET http://%s = %d, want 400 (HTTP to an HTTPS server) or an error", addr, resp.StatusCode)
				}
			}
		}
	})
	t.Run("TLS 1.1 refused", func(t *testing.T) {
		for name, addr := range map[string]string{"grpc": s.grpcAddr, "http": s.httpAddr, "admin": s.adminAddr} {
			if err := dialsTLS11(t, addr, ca); err == nil {
				t.Errorf("%s: a TLS 1.1 handshake succeeded, want TLS 1.2 minimum", name)
			}
		}
	})
	t.Run("TLS 1.2 accepted", func(t *testing.T) {
		conn, err := tls.Dial("tcp", s.adminAddr, &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatalf("TLS 1.2 handshake: %v", err)
		}
		conn.Close()
	})
}

func TestServeMutualTLS(t *testing.T) {
	ca, _, cert, key, caFile := pkiFiles(t)
	client := ca.Client(t, "envoy")
	stranger := testpki.NewCA(t, "another CA").Client(t, "envoy")
	s := startTLSServe(t, ca, map[string]string{"cert_file": cert, "key_file": key, "client_ca_file": caFile}, &client)

	t.Run("client certificate accepted", func(t *testing.T) {
		for name, err := range s.checkAll(t, &client) {
			t.Errorf("%s with a client certificate: %v", name, err)
		}
	})
	refused := []struct {
		name   string
		client *testpki.Pair
	}{
		{name: "no client certificate", client: nil},
		{name: "client certificate of another CA", client: &stranger},
	}
	for _, tc := range refused {
		t.Run(tc.name+" refused", func(t *testing.T) {
			errs := s.checkAll(t, tc.client)
			for _, name := range []string{"grpc", "http", "admin"} {
				if errs[name] == nil {
					t.Errorf("%s: %s accepted, want the handshake refused", name, tc.name)
				}
			}
		})
	}
}

// TestServeMutualTLSAdminHealthAndMetricsOpen: with
// tls.admin_client_auth: except_health_and_metrics, a client without a
// certificate (kubelet's probes, a Prometheus without one) gets the admin
// listener's GET /healthz, /readyz and /metrics and nothing else: the
// policy API and pprof refuse it and answer a client with a certificate;
// a certificate of another CA is still refused at the handshake, and the
// ext_authz listeners still require a certificate.
func TestServeMutualTLSAdminHealthAndMetricsOpen(t *testing.T) {
	ca, _, cert, key, caFile := pkiFiles(t)
	client := ca.Client(t, "envoy")
	stranger := testpki.NewCA(t, "another CA").Client(t, "envoy")
	s := startTLSServe(t, ca, map[string]string{
		"cert_file": cert, "key_file": key, "client_ca_file": caFile,
		"admin_client_auth": serveconfig.AdminClientAuthExceptHealthAndMetrics,
	}, &client, "--pprof")
	admin := "https://" + s.adminAddr

	tests := []struct {
		name       string
		method     string
		path       string
		client     *testpki.Pair
		wantStatus int
	}{
		{name: "liveness probe", method: http.MethodGet, path: "/healthz", wantStatus: http.StatusOK},
		{name: "readiness probe", method: http.MethodGet, path: "/readyz", wantStatus: http.StatusOK},
		{name: "metrics scrape", method: http.MethodGet, path: "/metrics", wantStatus: http.StatusOK},
		{name: "HEAD probe", method: http.MethodHead, path: "/healthz", wantStatus: http.StatusOK},
		{name: "pprof", method: http.MethodGet, path: "/debug/pprof/", wantStatus: http.StatusForbidden},
		{name: "pprof heap", method: http.MethodGet, path: "/debug/pprof/heap?debug=1", wantStatus: http.StatusForbidden},
		{name: "identity-token keys", method: http.MethodGet, path: jwksPath, wantStatus: http.StatusForbidden},
		{name: "probe path, other method", method: http.MethodPost, path: "/readyz", wantStatus: http.StatusForbidden},
		{name: "probe path, trailing slash", method: http.MethodGet, path: "/healthz/", wantStatus: http.StatusForbidden},
		{name: "unknown path", method: http.MethodGet, path: "/nope", wantStatus: http.StatusForbidden},
		{name: "pprof with a certificate", method: http.MethodGet, path: "/debug/pprof/", client: &client, wantStatus: http.StatusOK},
		{name: "probe with a certificate", method: http.MethodGet, path: "/readyz", client: &client, wantStatus: http.StatusOK},
		{name: "unknown path with a certificate", method: http.MethodGet, path: "/nope", client: &client, wantStatus: http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body, err := s.httpsDo(t, tc.method, admin+tc.path, tc.client)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.method, tc.path, err)
			}
			if code != tc.wantStatus {
				t.Errorf("%s %s (client certificate: %v) = %d, want %d; body %q", tc.method, tc.path, tc.client != nil, code, tc.wantStatus, body)
			}
			if code == http.StatusForbidden && !strings.Contains(body, "client certificate is required") {
				t.Errorf("%s %s: 403 body %q does not say a client certificate is required", tc.method, tc.path, body)
			}
		})
	}

	t.Run("policy API", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			client *testpki.Pair
			want   codes.Code
		}{
			{name: "without a certificate", client: nil, want: codes.Unauthenticated},
			{name: "with a certificate", client: &client, want: codes.OK},
		} {
			conn, err := grpc.NewClient(s.adminAddr, grpc.WithTransportCredentials(credentials.NewTLS(s.clientConfig(t, tc.client))))
			if err != nil {
				t.Fatal(err)
			}
			api := authzv1.NewPolicyServiceClient(conn)
			_, err = api.ListRoutes(t.Context(), &authzv1.ListRoutesRequest{})
			if got := status.Code(err); got != tc.want {
				t.Errorf("ListRoutes %s = %v (%v), want %v", tc.name, got, err, tc.want)
			}
			if tc.want != codes.OK && !strings.Contains(status.Convert(err).Message(), "client certificate is required") {
				t.Errorf("ListRoutes %s: message %q does not say a client certificate is required", tc.name, status.Convert(err).Message())
			}
			// Reflection, a streaming service, is behind the same rule.
			stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
			if err == nil {
				// Send reports io.EOF when the call has ended; Recv its status.
				_ = stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
				_, err = stream.Recv()
			}
			if got := status.Code(err); got != tc.want {
				t.Errorf("reflection %s = %v (%v), want %v", tc.name, got, err, tc.want)
			}
			conn.Close()
		}
	})

	t.Run("check --server on the admin listener with a certificate", func(t *testing.T) {
		// README.md's command: the policy API's Explain through mutual TLS.
		dir := t.TempDir()
		clientCert := testpki.WriteFile(t, dir, "client.crt", client.CertPEM)
		clientKey := testpki.WriteFile(t, dir, "client.key", client.KeyPEM)
		for _, tc := range []struct {
			name string
			args []string
			want int
		}{
			{name: "with a certificate", args: []string{"--tls-cert", clientCert, "--tls-key", clientKey}, want: exitOK},
			{name: "without a certificate", want: exitUsage},
		} {
			h := newHarness(t)
			args := append([]string{"check", "--server", s.adminAddr, "--tls-ca", caFile, "--token", s.token, "--path", "/agents"}, tc.args...)
			if got := h.run(args...); got != tc.want {
				t.Errorf("%s (%s) = %d, want %d\nstdout: %s\nstderr: %s", call(args), tc.name, got, tc.want, h.stdout, h.stderr)
			}
		}
	})

	t.Run("ext_authz listeners still require a certificate", func(t *testing.T) {
		errs := s.checkAll(t, nil)
		for _, name := range []string{"grpc", "http"} {
			if errs[name] == nil {
				t.Errorf("%s without a client certificate: accepted, want the handshake refused", name)
			}
		}
		if errs["admin"] != nil {
			t.Errorf("admin /readyz without a client certificate: %v, want 200", errs["admin"])
		}
		for name, err := range s.checkAll(t, &client) {
			t.Errorf("%s with a client certificate: %v", name, err)
		}
	})

	t.Run("certificate of another CA refused at the handshake", func(t *testing.T) {
		errs := s.checkAll(t, &stranger)
		for _, name := range []string{"grpc", "http", "admin"} {
			if errs[name] == nil {
				t.Errorf("%s: a certificate of another CA was accepted, want the handshake refused", name)
			}
		}
	})

	t.Run("refusals logged without secrets", func(t *testing.T) {
		logs := s.h.stderr.String()
		if !strings.Contains(logs, "admin request without a client certificate refused") {
			t.Error("no log line for the refused admin requests")
		}
		if strings.Contains(logs, s.token) {
			t.Error("the log holds the bearer token")
		}
	})
}

// atomicWriter lays files out as Kubernetes does for a Secret volume:
// dir/name -> ..data/name, ..data -> a timestamped directory, and an
// update swaps the ..data symlink in one rename.
type atomicWriter struct {
	t   *testing.T
	dir string
	gen int
}

func (w *atomicWriter) write(files map[string][]byte) {
	w.t.Helper()
	w.gen++
	version := "..2026_12_02_" + strings.Repeat("x", w.gen)
	if err := os.Mkdir(filepath.Join(w.dir, version), 0o700); err != nil {
		w.t.Fatal(err)
	}
	for name, b := range files {
		testpki.WriteFile(w.t, filepath.Join(w.dir, version), name, b)
		link := filepath.Join(w.dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				w.t.Fatal(err)
			}
		}
	}
	tmp := filepath.Join(w.dir, "..data_tmp")
	if err := os.Symlink(version, tmp); err != nil {
		w.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(w.dir, "..data")); err != nil {
		w.t.Fatal(err)
	}
}

// servedName is the common name of the certificate addr presents.
func servedName(t *testing.T, addr string, ca *testpki.CA) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// TestServeTLSRotation: a certificate rotated on disk (a Secret volume's
// ..data swap) is served without a restart; a half-done rotation (the new
// certificate beside the old key) keeps the previous certificate.
func TestServeTLSRotation(t *testing.T) {
	ca := testpki.NewCA(t, "agentos-authz test CA")
	first := ca.ServerUntil(t, "first", time.Now().Add(24*time.Hour).Truncate(time.Second))
	second := ca.ServerUntil(t, "second", time.Now().Add(48*time.Hour).Truncate(time.Second))
	w := &atomicWriter{t: t, dir: t.TempDir()}
	w.write(map[string][]byte{"tls.crt": first.CertPEM, "tls.key": first.KeyPEM})
	s := startTLSServe(t, ca, map[string]string{
		"cert_file": filepath.Join(w.dir, "tls.crt"), "key_file": filepath.Join(w.dir, "tls.key"),
	}, nil)
	for _, addr := range []string{s.grpcAddr, s.httpAddr, s.adminAddr} {
		if got := servedName(t, addr, ca); got != "first" {
			t.Fatalf("%s serves %q, want first", addr, got)
		}
	}

	if got := s.expiryMetric(t); got != first.Cert.NotAfter.Unix() {
		t.Errorf("%s = %d, want the first certificate's %d", MetricTLSExpiry, got, first.Cert.NotAfter.Unix())
	}

	w.write(map[string][]byte{"tls.crt": second.CertPEM, "tls.key": first.KeyPEM})
	if got := servedName(t, s.adminAddr, ca); got != "first" {
		t.Errorf("after a mismatched rotation the admin listener serves %q, want the previous certificate (first)", got)
	}
	poll.For(t, "the mismatched rotation logged", func() bool {
		return strings.Contains(s.h.stderr.String(), "do not load") && strings.Contains(s.h.stderr.String(), "tls.key_file")
	})

	w.write(map[string][]byte{"tls.crt": second.CertPEM, "tls.key": second.KeyPEM})
	for name, addr := range map[string]string{"grpc": s.grpcAddr, "http": s.httpAddr, "admin": s.adminAddr} {
		poll.For(t, name+" serving the rotated certificate", func() bool {
			return servedName(t, addr, ca) == "second"
		})
	}
	if got := s.expiryMetric(t); got != second.Cert.NotAfter.Unix() {
		t.Errorf("%s = %d after rotation, want the second certificate's %d", MetricTLSExpiry, got, second.Cert.NotAfter.Unix())
	}
	// The existing gRPC connection and new ones keep working.
	if code, err := authv3Check(t.Context(), s.conn, s.token); err != nil || codes.Code(code) != codes.OK {
		t.Errorf("Check after rotation = %v, %v; want OK", codes.Code(code), err)
	}
	if !strings.Contains(s.h.stderr.String(), "TLS certificate reloaded") {
		t.Error("no \"TLS certificate reloaded\" log line")
	}
	if strings.Contains(s.h.stderr.String(), "PRIVATE KEY") {
		t.Error("the log holds key material")
	}
}

// TestCheckServerTLS: check --server speaks TLS and mutual TLS with
// --tls-ca, --tls-cert and --tls-key.
func TestCheckServerTLS(t *testing.T) {
	ca, dir, cert, key, caFile := pkiFiles(t)
	client := ca.Client(t, "operator")
	clientCert := testpki.WriteFile(t, dir, "client.crt", client.CertPEM)
	clientKey := testpki.WriteFile(t, dir, "client.key", client.KeyPEM)
	s := startTLSServe(t, ca, map[string]string{"cert_file": cert, "key_file": key, "client_ca_file": caFile}, &client)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{name: "mutual TLS", args: []string{"--tls-ca", caFile, "--tls-cert", clientCert, "--tls-key", clientKey}, wantCode: exitOK},
		{name: "no client certificate", args: []string{"--tls-ca", caFile}, wantCode: exitUsage, wantErr: "ask " + s.grpcAddr},
		{name: "plaintext", args: nil, wantCode: exitUsage, wantErr: "ask " + s.grpcAddr},
		{name: "server not trusted", args: []string{"--tls-cert", clientCert, "--tls-key", clientKey}, wantCode: exitUsage, wantErr: "certificate"},
		{name: "cert without key", args: []string{"--tls-cert", clientCert}, wantCode: exitUsage, wantErr: "--tls-cert needs --tls-key"},
		{name: "key without cert", args: []string{"--tls-key", clientKey}, wantCode: exitUsage, wantErr: "--tls-key needs --tls-cert"},
		{name: "CA file missing", args: []string{"--tls-ca", filepath.Join(dir, "nope.pem")}, wantCode: exitUsage, wantErr: "--tls-ca:"},
		{name: "CA file not PEM", args: []string{"--tls-ca", clientKey}, wantCode: exitUsage, wantErr: "holds no PEM certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			args := append([]string{"check", "--server", s.grpcAddr, "--token", s.token, "--method", "GET", "--path", "/agents"}, tc.args...)
			if got := h.run(args...); got != tc.wantCode {
				t.Fatalf("%s = %d, want %d\nstdout: %s\nstderr: %s", call(args), got, tc.wantCode, h.stdout, h.stderr)
			}
			if tc.wantCode == exitOK && !strings.Contains(h.stdout.String(), "decision: allow") {
				t.Errorf("%s printed %q, want decision: allow", call(args), h.stdout)
			}
			if !strings.Contains(h.stderr.String(), tc.wantErr) {
				t.Errorf("%s stderr = %q, want %q", call(args), h.stderr, tc.wantErr)
			}
		})
	}
	t.Run("TLS flags need --server", func(t *testing.T) {
		h := newHarness(t)
		if got := h.run("check", "--tls-ca", caFile, "--path", "/"); got != exitUsage || !strings.Contains(h.stderr.String(), "apply to --server only") {
			t.Errorf("check --tls-ca without --server = %d, %q; want 2 and the reason", got, h.stderr)
		}
	})
}

// TestServeTLSConfigErrors: a bad tls: section stops serve with exit 2
// and the field named.
func TestServeTLSConfigErrors(t *testing.T) {
	_, dir, cert, _, _ := pkiFiles(t)
	h := newHarness(t)
	_, pub := keyPair(t, h)
	cfg := keyConfig(pub, "ES256")
	cfg["tls"] = map[string]string{"cert_file": cert, "key_file": filepath.Join(dir, "missing.key")}
	path := writeConfig(t, cfg)
	code := h.run("serve", "--config", path, "--grpc-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--http-addr", "off")
	if code != exitUsage || !strings.Contains(h.stderr.String(), "tls.key_file") {
		t.Errorf("serve with a missing tls.key_file = %d, %q; want 2 naming tls.key_file", code, h.stderr)
	}
}

// TestRestartNeededTLSAndTracing: a reload that changes which TLS files
// are served, or the tracing exporter, is reported as needing a restart
// (the files' contents reload by themselves).
func TestRestartNeededTLSAndTracing(t *testing.T) {
	half := 0.5
	running := &config{Config: &authz.Config{}, Settings: &serveconfig.Settings{TLS: serveconfig.TLSConfig{CertFile: "a.crt", KeyFile: "a.key"}}}
	next := &config{Config: &authz.Config{}, Settings: &serveconfig.Settings{
		TLS:     serveconfig.TLSConfig{CertFile: "b.crt", KeyFile: "a.key", ClientCAFile: "ca.crt", AdminClientAuth: serveconfig.AdminClientAuthExceptHealthAndMetrics},
		Tracing: serveconfig.TracingConfig{OTLPEndpoint: "c:4317", SampleRatio: &half, Insecure: true},
	}}
	got := restartNeeded(running, next)
	want := []string{"tls.cert_file", "tls.client_ca_file", "tls.admin_client_auth", "tracing.otlp_endpoint", "tracing.sample_ratio", "tracing.insecure"}
	if !slices.Equal(got, want) {
		t.Errorf("restartNeeded = %q, want %q", got, want)
	}
	if got := restartNeeded(running, running); len(got) != 0 {
		t.Errorf("restartNeeded(same) = %q, want none", got)
	}
}

// expiryMetric reads the certificate expiry gauge from /metrics over TLS.
func (s *tlsServer) expiryMetric(t *testing.T) int64 {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: s.clientConfig(t, nil)}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+s.adminAddr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), MetricTLSExpiry+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s value %q: %v", MetricTLSExpiry, v, err)
			}
			return int64(f)
		}
	}
	t.Fatalf("/metrics has no %s", MetricTLSExpiry)
	return 0
}
