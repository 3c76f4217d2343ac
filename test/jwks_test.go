package test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
	"github.com/agentos-authz/agentos-authz/internal/poll"
	"github.com/agentos-authz/agentos-authz/test/harness"
)

// TestJWKSURLRotation runs the binary against a JWKS server on loopback
// (README, Performance): not ready while the JWKS fails, ready once it loads; then a
// key rotation with no restart — a new key verifies at once (kid-miss
// refetch), the old one stops verifying within a refresh interval.
func TestJWKSURLRotation(t *testing.T) {
	bin := binary(t)
	k1, k2 := newSigner(t, "k1"), newSigner(t, "k2")
	jwks := &switchableJWKS{}
	jwks.serve(http.StatusServiceUnavailable, nil)
	srv := httptest.NewServer(jwks)
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	yaml := fmt.Sprintf("os_id: test-os\njwt:\n  jwks_url: %s/jwks.json\n  jwks_refresh: 1s\n", srv.URL)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, bin, cfg)

	// 1. The JWKS answers 503: the service is up but not ready.
	poll.For(t, "the admin listener", func() bool { return p.readyz() != 0 })
	poll.For(t, "a failed JWKS fetch", func() bool { return jwks.hits.Load() > 0 })
	if code := p.readyz(); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while the JWKS fails = %d, want 503", code)
	}
	if st := p.health(t); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("gRPC health while the JWKS fails = %s, want NOT_SERVING", st)
	}
	poll.For(t, "the not-ready log line", func() bool {
		out := p.out.String()
		return strings.Contains(out, "JWKS not loaded") && strings.Contains(out, srv.URL+"/jwks.json") && strings.Contains(out, "503")
	})

	// 2. The JWKS recovers with k1: ready, k1 tokens allowed.
	jwks.serve(http.StatusOK, jwksOf(t, k1))
	poll.For(t, "readiness", func() bool { return p.readyz() == http.StatusOK })
	if err := harness.WaitServing(t.Context(), p.conn); err != nil {
		t.Fatalf("gRPC health: %v", err)
	}
	tok1, tok2 := k1.token(t), k2.token(t)
	p.expect(t, tok1, codes.OK)
	p.expect(t, tok2, codes.Unauthenticated)

	// 3. k2 is published beside k1: a k2 token verifies at once, through
	// the kid-miss refetch or the refresh, with no restart.
	jwks.serve(http.StatusOK, jwksOf(t, k1, k2))
	poll.For(t, "k2 tokens to verify", func() bool { return p.check(t, tok2) == codes.OK })
	p.expect(t, tok1, codes.OK)

	// 4. k1 is removed: k1 tokens (cached as valid a moment ago) stop
	// verifying within a refresh interval; k2 tokens keep working.
	jwks.serve(http.StatusOK, jwksOf(t, k2))
	poll.For(t, "k1 tokens to be refused", func() bool { return p.check(t, tok1) == codes.Unauthenticated })
	p.expect(t, tok2, codes.OK)

	// 5. The JWKS server goes down: the last good keys keep serving.
	jwks.serve(http.StatusInternalServerError, nil)
	hits := jwks.hits.Load()
	poll.For(t, "a failed refresh", func() bool { return jwks.hits.Load() > hits+1 })
	p.expect(t, tok2, codes.OK)
	if code := p.readyz(); code != http.StatusOK {
		t.Errorf("/readyz after a failed refresh = %d, want 200 (keys still loaded)", code)
	}
	if strings.Contains(p.out.String(), "BEGIN") {
		t.Error("the log holds key material")
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0\n%s", code, p.out.String())
	}
}

// switchableJWKS is the test's JWKS endpoint.
type switchableJWKS struct {
	hits   atomic.Int64
	mu     sync.Mutex
	status int
	body   []byte
}

func (j *switchableJWKS) serve(status int, body []byte) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.status, j.body = status, body
}

func (j *switchableJWKS) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	j.hits.Add(1)
	j.mu.Lock()
	status, body := j.status, j.body
	j.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// signer is an RS256 key with its kid.
type signer struct {
	kid string
	key *rsa.PrivateKey
}

func newSigner(t *testing.T, kid string) signer {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return signer{kid: kid, key: k}
}

func (s signer) token(t *testing.T) string {
	tok, err := jwt.NewBuilder().Subject("user-"+s.kid).Audience([]string{"test-os"}).
		Claim("scopes", []string{"agents:read"}).IssuedAt(time.Now()).Expiration(time.Now().Add(time.Hour)).Build()
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, s.kid)
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256, s.key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

func jwksOf(t *testing.T, signers ...signer) []byte {
	set := jwk.NewSet()
	for _, s := range signers {
		k, err := jwk.FromRaw(s.key.Public())
		if err != nil {
			t.Fatal(err)
		}
		_ = k.Set(jwk.KeyIDKey, s.kid)
		_ = k.Set(jwk.AlgorithmKey, jwa.RS256)
		_ = k.Set(jwk.KeyUsageKey, "sig")
		_ = set.AddKey(k)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serveProc is `agentos-authz serve` started by this test, which must see
// it before it is ready (harness.Start waits for SERVING).
type serveProc struct {
	cmd   *exec.Cmd
	out   *harness.LockedBuffer
	grpc  string
	admin string
	conn  *grpc.ClientConn
	done  chan struct{}
	auth  authv3.AuthorizationClient
	hc    healthpb.HealthClient
}

func startServe(t *testing.T, bin, cfg string) *serveProc {
	t.Helper()
	p := &serveProc{out: &harness.LockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "--config", cfg, "--grpc-addr", "127.0.0.1:0", "--http-addr", "off", "--admin-addr", "127.0.0.1:0")
	p.cmd.Env = harness.Environ(os.Environ(), nil)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { // a failed wait below must not leave the process behind
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	// The addresses the server bound, from its listening log line.
	poll.For(t, "the listening log line", func() bool {
		select {
		case <-p.done:
			t.Fatalf("the server exited before listening (%s)\n%s", p.cmd.ProcessState, p.out.String())
		default:
		}
		a, ok := harness.ListeningAddrs(p.out.String())
		p.grpc, p.admin = a.GRPC, a.Admin
		return ok
	})
	conn, err := harness.Dial(p.grpc)
	if err != nil {
		t.Fatal(err)
	}
	p.conn = conn
	p.auth = authv3.NewAuthorizationClient(conn)
	p.hc = healthpb.NewHealthClient(conn)
	t.Cleanup(func() {
		_ = conn.Close()
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("server output:\n%s", p.out.String())
		}
		for _, bad := range []string{"panic:", "DATA RACE", "fatal error:"} {
			if strings.Contains(p.out.String(), bad) {
				t.Errorf("the server's output holds %q", bad)
			}
		}
	})
	return p
}

// readyz is the status of GET /readyz, 0 when the admin listener does not
// answer (yet).
func (p *serveProc) readyz() int {
	c := http.Client{Timeout: 2 * time.Second}
	res, err := c.Get("http://" + p.admin + "/readyz")
	if err != nil {
		return 0
	}
	_ = res.Body.Close()
	return res.StatusCode
}

func (p *serveProc) health(t *testing.T) healthpb.HealthCheckResponse_ServingStatus {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	res, err := p.hc.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("health Check: %v", err)
	}
	return res.GetStatus()
}

// check sends GET /agents with tok and returns the gRPC status code of
// the CheckResponse.
func (p *serveProc) check(t *testing.T, tok string) codes.Code {
	t.Helper()
	b, err := harness.BuildRequest(conformance.Request{Method: "GET", Path: "/agents"}, map[string]string{"token": tok})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res, err := p.auth.Check(ctx, b.Check)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return codes.Code(res.GetStatus().GetCode())
}

func (p *serveProc) expect(t *testing.T, tok string, want codes.Code) {
	t.Helper()
	if got := p.check(t, tok); got != want {
		t.Fatalf("Check(GET /agents) = %s, want %s", got, want)
	}
}

// stop sends SIGTERM and returns the exit code.
func (p *serveProc) stop(t *testing.T) int {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(harness.DefaultStopTimeout):
		t.Fatal("the server did not stop after SIGTERM")
		return -1
	}
}
