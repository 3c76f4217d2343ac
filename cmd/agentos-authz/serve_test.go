package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/envoy"
	"github.com/agentos-authz/agentos-authz/internal/poll"
	"github.com/agentos-authz/agentos-authz/internal/serveconfig"
)

// waitTimeout bounds every wait of these tests (polling, never sleeping).
const waitTimeout = 20 * time.Second

// running is a serve command running in process.
type running struct {
	h         *harness
	cancel    context.CancelFunc
	exit      chan int
	grpcAddr  string
	adminAddr string
	conn      *grpc.ClientConn
}

// startServe runs serve with args (plus loopback listeners on free ports)
// and waits until it logged its listeners. opts.newAuthz, when set,
// replaces authz.New (serve is then called directly).
func startServe(t *testing.T, h *harness, fake func(*config, authz.Options) (authorizer, error), drain time.Duration, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{h: h, cancel: cancel, exit: make(chan int, 1)}
	s := h.sys("")
	if fake == nil {
		args = append([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--http-addr", "off"}, args...)
		go func() { r.exit <- run(ctx, args, s) }()
	} else {
		cfg := testConfig(t)
		go func() {
			r.exit <- serve(ctx, cfg, newLogger(s.stderr, false, zap.DebugLevel), serveOptions{drainTimeout: drain, newAuthz: fake}, s)
		}()
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.exit:
		case <-time.After(waitTimeout):
			t.Error("serve did not stop after cancel")
		}
	})
	poll.For(t, "the listening log line", func() bool {
		select {
		case code := <-r.exit:
			t.Fatalf("serve exited %d before listening\nstderr: %s", code, h.stderr)
		default:
		}
		r.grpcAddr, r.adminAddr = listeningAddrs(h.stderr.String())
		return r.grpcAddr != ""
	})
	conn, err := grpc.NewClient(r.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r.conn = conn
	return r
}

// listeningAddrs finds the addresses in the JSON "listening" log line.
func listeningAddrs(logs string) (grpcAddr, adminAddr string) {
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line struct {
			Msg   string `json:"msg"`
			GRPC  string `json:"grpc_addr"`
			Admin string `json:"admin_addr"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
			return line.GRPC, line.Admin
		}
	}
	return "", ""
}

// stop cancels serve's context (what SIGTERM does) and returns its exit code.
func (r *running) stop(t *testing.T) int {
	t.Helper()
	r.cancel()
	select {
	case code := <-r.exit:
		r.exit <- code // for the cleanup
		return code
	case <-time.After(waitTimeout):
		t.Fatal("serve did not stop")
		return -1
	}
}

func (r *running) health(ctx context.Context, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	resp, err := healthpb.NewHealthClient(r.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	return resp.GetStatus(), err
}

func (r *running) waitServing(t *testing.T) {
	t.Helper()
	for _, svc := range serviceNames() {
		poll.For(t, "SERVING for "+svc, func() bool {
			st, err := r.health(t.Context(), svc)
			return err == nil && st == healthpb.HealthCheckResponse_SERVING
		})
	}
}

// get returns the status code of an admin endpoint.
func (r *running) get(t *testing.T, path string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+r.adminAddr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// check sends the CheckRequest Envoy would send (envoy.NewCheckRequest)
// for method and path with this authorization header ("" for none).
func (r *running) check(ctx context.Context, method, path, authorization string) (*authv3.CheckResponse, error) {
	spec := envoy.RequestSpec{Method: method, Path: path, RequestID: "test-1"}
	if authorization != "" {
		spec.Headers = []authz.Header{{Name: "authorization", Value: authorization}}
	}
	return authv3.NewAuthorizationClient(r.conn).Check(ctx, envoy.NewCheckRequest(spec))
}

// keyPair writes an ES256 key pair (fast to generate) with keygen and
// returns the prefix and the public key text.
func keyPair(t *testing.T, h *harness) (prefix, pub string) {
	t.Helper()
	prefix = filepath.Join(t.TempDir(), "es")
	if code := h.run("keygen", "--alg", "ES256", "--out", prefix); code != 0 {
		t.Fatalf("keygen = %d: %s", code, h.stderr)
	}
	b, err := os.ReadFile(prefix + ".pub.pem")
	if err != nil {
		t.Fatal(err)
	}
	return prefix, string(b)
}

// testConfig is a valid configuration on loopback free ports.
func testConfig(t *testing.T) *config {
	t.Helper()
	_, pub := keyPair(t, newHarness(t))
	text, err := json.Marshal(keyConfig(pub, "ES256"))
	if err != nil {
		t.Fatal(err)
	}
	loopback, off := "127.0.0.1:0", serveconfig.HTTPAddrOff
	cfg, err := loadText(text, nil, serveconfig.Flags{GRPCAddr: &loopback, AdminAddr: &loopback, HTTPAddr: &off})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestServe runs the real service: health, readiness, Check, reflection,
// then a clean stop.
func TestServe(t *testing.T) {
	h := newHarness(t)
	prefix, pub := keyPair(t, h)
	tok := h.mint("--key", prefix+".key.pem", "--alg", "ES256", "--aud", "test-os", "--sub", "alice", "--scopes", "agents:read")
	cfg := writeConfig(t, keyConfig(pub, "ES256"))

	srv := newHarness(t)
	r := startServe(t, srv, nil, 0, "--config", cfg)
	r.waitServing(t)
	if got := r.get(t, "/healthz"); got != http.StatusOK {
		t.Errorf("GET /healthz = %d, want 200", got)
	}
	if got := r.get(t, "/readyz"); got != http.StatusOK {
		t.Errorf("GET /readyz = %d, want 200", got)
	}

	tests := []struct {
		name, method, path, auth string
		wantCode                 codes.Code
		wantHTTP                 typev3.StatusCode
	}{
		{name: "allowed", method: "GET", path: "/agents", auth: "Bearer " + tok, wantCode: codes.OK},
		{name: "forbidden", method: "POST", path: "/agents/web/runs", auth: "Bearer " + tok, wantCode: codes.PermissionDenied, wantHTTP: typev3.StatusCode_Forbidden},
		{name: "no credential", method: "GET", path: "/agents", wantCode: codes.Unauthenticated, wantHTTP: typev3.StatusCode_Unauthorized},
		{name: "garbage token", method: "GET", path: "/agents", auth: "Bearer not.a.jwt", wantCode: codes.Unauthenticated, wantHTTP: typev3.StatusCode_Unauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := r.check(t.Context(), tc.method, tc.path, tc.auth)
			if err != nil {
				t.Fatalf("Check(%s %s) error = %v", tc.method, tc.path, err)
			}
			if got := codes.Code(resp.GetStatus().GetCode()); got != tc.wantCode {
				t.Errorf("Check(%s %s) = %v, want %v (%v)", tc.method, tc.path, got, tc.wantCode, resp)
			}
			if got := resp.GetDeniedResponse().GetStatus().GetCode(); got != tc.wantHTTP {
				t.Errorf("Check(%s %s) HTTP = %v, want %v", tc.method, tc.path, got, tc.wantHTTP)
			}
		})
	}
	t.Run("empty check request is a 400 answer", func(t *testing.T) {
		resp, err := authv3.NewAuthorizationClient(r.conn).Check(t.Context(), &authv3.CheckRequest{})
		if err != nil {
			t.Fatalf("Check(empty) error = %v", err)
		}
		if got := resp.GetDeniedResponse().GetStatus().GetCode(); got != typev3.StatusCode_BadRequest {
			t.Errorf("Check(empty) HTTP = %v, want 400", got)
		}
	})
	t.Run("reflection lists the services", func(t *testing.T) {
		services := reflectedServices(t, r.conn)
		for _, want := range []string{"envoy.service.auth.v3.Authorization", "grpc.health.v1.Health"} {
			if !slices.Contains(services, want) {
				t.Errorf("reflection services = %q, want %s", services, want)
			}
		}
	})

	if code := r.stop(t); code != 0 {
		t.Errorf("serve after cancel = exit %d, want 0\nstderr: %s", code, srv.stderr)
	}
	logs := srv.stderr.String()
	if strings.Contains(logs, tok) || strings.Contains(logs, "not.a.jwt") {
		t.Error("the service logged a token")
	}
	for _, msg := range []string{`"msg":"serving"`, `"msg":"check denied"`, `"msg":"draining"`, `"msg":"stopped"`} {
		if !strings.Contains(logs, msg) {
			t.Errorf("logs lack %s:\n%s", msg, logs)
		}
	}
}

func reflectedServices(t *testing.T, conn *grpc.ClientConn) []string {
	t.Helper()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.CloseSend()
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	return names
}

// blockingAuthz is a fake authorizer: ready once setReady is called;
// Decide signals entered and waits for release (or ctx) before allowing.
type blockingAuthz struct {
	ready   chan struct{}
	entered chan struct{}
	release chan struct{}
}

func newBlockingAuthz(ready bool) *blockingAuthz {
	b := &blockingAuthz{ready: make(chan struct{}), entered: make(chan struct{}, 16), release: make(chan struct{})}
	if ready {
		b.setReady()
	}
	return b
}

// setReady closes ReadyC, as the real authorizer does on its first keys.
func (b *blockingAuthz) setReady() { close(b.ready) }

func (b *blockingAuthz) ReadyC() <-chan struct{} { return b.ready }

func (b *blockingAuthz) Decide(ctx context.Context, _ *authz.Request) authz.Decision {
	b.entered <- struct{}{}
	select {
	case <-b.release:
		return authz.Decision{Status: 200, Reason: authz.ReasonAllowed, Upstream: []authz.Header{{Name: "x-agentos-auth", Value: "none"}}}
	case <-ctx.Done():
		return authz.Decision{Status: 403, Reason: authz.ReasonCanceled, Detail: "canceled"}
	}
}

func (b *blockingAuthz) factory(*config, authz.Options) (authorizer, error) { return b, nil }

// TestServeDrainsInFlight: on cancel (SIGTERM), readiness goes 503 while an
// in-flight check is still running; that check completes with its answer;
// then serve exits 0.
func TestServeDrainsInFlight(t *testing.T) {
	fake := newBlockingAuthz(true)
	r := startServe(t, newHarness(t), fake.factory, waitTimeout)
	r.waitServing(t)

	type result struct {
		resp *authv3.CheckResponse
		err  error
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := r.check(context.WithoutCancel(t.Context()), "GET", "/agents", "")
		inflight <- result{resp, err}
	}()
	<-fake.entered

	r.cancel() // what SIGTERM does
	poll.For(t, "/readyz 503 while draining", func() bool { return r.get(t, "/readyz") == http.StatusServiceUnavailable })
	if got := r.get(t, "/healthz"); got != http.StatusOK {
		t.Errorf("GET /healthz while draining = %d, want 200", got)
	}
	select {
	case code := <-r.exit:
		t.Fatalf("serve exited %d with a check in flight", code)
	default:
	}

	close(fake.release)
	res := <-inflight
	if res.err != nil {
		t.Fatalf("in-flight Check error = %v, want its answer", res.err)
	}
	if got := codes.Code(res.resp.GetStatus().GetCode()); got != codes.OK {
		t.Errorf("in-flight Check = %v, want OK", got)
	}
	if code := r.stop(t); code != 0 {
		t.Errorf("serve = exit %d, want 0", code)
	}
}

// TestServeDrainTimeout: a check that outlives the drain timeout is cut
// off and serve still exits 0.
func TestServeDrainTimeout(t *testing.T) {
	fake := newBlockingAuthz(true)
	r := startServe(t, newHarness(t), fake.factory, 50*time.Millisecond)
	r.waitServing(t)
	inflight := make(chan error, 1)
	go func() {
		_, err := r.check(context.WithoutCancel(t.Context()), "GET", "/agents", "")
		inflight <- err
	}()
	<-fake.entered
	if code := r.stop(t); code != 0 {
		t.Errorf("serve = exit %d, want 0", code)
	}
	if err := <-inflight; err == nil {
		t.Error("a check past the drain timeout got an answer, want the connection cut")
	}
	if !strings.Contains(r.h.stderr.String(), "drain timeout reached") {
		t.Errorf("logs lack the drain timeout warning:\n%s", r.h.stderr)
	}
}

// TestServeNotServingUntilReady: NOT_SERVING, /readyz 503 and UNAVAILABLE
// checks until the authorizer is ready, then SERVING.
func TestServeNotServingUntilReady(t *testing.T) {
	fake := newBlockingAuthz(false)
	r := startServe(t, newHarness(t), fake.factory, waitTimeout)
	for _, svc := range serviceNames() {
		poll.For(t, "a health answer", func() bool {
			st, err := r.health(t.Context(), svc)
			if err == nil && st != healthpb.HealthCheckResponse_NOT_SERVING {
				t.Fatalf("health(%q) = %v before ready, want NOT_SERVING", svc, st)
			}
			return err == nil
		})
	}
	if got := r.get(t, "/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz before ready = %d, want 503", got)
	}
	fake.setReady()
	r.waitServing(t)
	if got := r.get(t, "/readyz"); got != http.StatusOK {
		t.Errorf("GET /readyz when ready = %d, want 200", got)
	}
	close(fake.release)
	if _, err := r.check(t.Context(), "GET", "/", ""); err != nil {
		t.Errorf("Check when ready: %v", err)
	}
}

func TestCheckGateUnavailable(t *testing.T) {
	_, err := (&checkGate{}).Check(t.Context(), &authv3.CheckRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("Check before the authorizer = %v, want Unavailable", err)
	}
}

func TestServeErrors(t *testing.T) {
	h := newHarness(t)
	_, pub := keyPair(t, h)
	good := writeConfig(t, keyConfig(pub, "ES256"))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	bad := keyConfig(pub, "ES256")
	bad["unmapped_routes"] = "sometimes"

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{name: "gRPC port taken", args: []string{"--config", good, "--grpc-addr", busy.Addr().String(), "--admin-addr", "127.0.0.1:0"},
			wantCode: 1, wantStderr: "cannot listen for gRPC on " + busy.Addr().String()},
		{name: "admin port taken", args: []string{"--config", good, "--grpc-addr", "127.0.0.1:0", "--admin-addr", busy.Addr().String()},
			wantCode: 1, wantStderr: "cannot listen for admin HTTP on " + busy.Addr().String()},
		{name: "invalid configuration", args: []string{"--config", writeConfig(t, bad)}, wantCode: 2, wantStderr: "unmapped_routes"},
		{name: "bad address flag", args: []string{"--config", good, "--grpc-addr", "nohostport"}, wantCode: 2, wantStderr: "grpc_addr"},
		{name: "missing file", args: []string{"--config", filepath.Join(t.TempDir(), "nope.yaml")}, wantCode: 2, wantStderr: "nope.yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			args := append([]string{"serve", "--http-addr", "off"}, tc.args...)
			if code := h.run(args...); code != tc.wantCode {
				t.Errorf("%s = exit %d, want %d\nstderr: %s", call(args), code, tc.wantCode, h.stderr)
			}
			if !strings.Contains(h.stderr.String(), tc.wantStderr) {
				t.Errorf("%s stderr = %q, want %q", call(args), h.stderr, tc.wantStderr)
			}
		})
	}
}

// runDev starts serve --dev on loopback ports (httpAddr "off" or an
// address) and waits until its banner shows marker; at the end of the test
// the service is stopped and must exit 0.
func runDev(t *testing.T, h *harness, httpAddr, marker string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	exit := make(chan int, 1)
	s := h.sys("")
	go func() {
		exit <- run(ctx, []string{"serve", "--dev", "--grpc-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--http-addr", httpAddr}, s)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-exit; code != 0 {
			t.Errorf("serve --dev = exit %d, want 0", code)
		}
	})
	poll.For(t, "the dev banner", func() bool {
		select {
		case code := <-exit:
			exit <- code // for the cleanup
			t.Fatalf("serve --dev exited %d\nstderr: %s", code, h.stderr)
		default:
		}
		return strings.Contains(h.stdout.String(), marker)
	})
}

// TestServeDev runs serve --dev and every command its banner prints: each
// must end as the banner's comment says (# 200 → exit 0, # 401/403 → 1).
func TestServeDev(t *testing.T) {
	h := newHarness(t)
	runDev(t, h, "off", "# Try them")
	out := h.stdout.String()
	if !strings.Contains(out, "DEVELOPMENT MODE - NOT FOR PRODUCTION") {
		t.Errorf("no development banner:\n%s", out)
	}
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^export (\w+)='([^']+)'`).FindAllStringSubmatch(out, -1) {
		vars[m[1]] = m[2]
	}
	for _, want := range []string{"ADMIN_TOKEN", "READER_TOKEN", "RUNNER_TOKEN", "EXPIRED_TOKEN", devSATokenVar} {
		if vars[want] == "" {
			t.Errorf("banner exports no %s", want)
		}
	}
	cmds := regexp.MustCompile(`(?m)^agentos-authz (check .*?)\s+# (\d{3})`).FindAllStringSubmatch(out, -1)
	if len(cmds) < 5 {
		t.Fatalf("banner has %d check commands, want the 200/401/403 set:\n%s", len(cmds), out)
	}
	for _, m := range cmds {
		args := strings.Fields(os.Expand(m[1], func(k string) string { return vars[k] }))
		for i, a := range args {
			args[i] = strings.Trim(a, `"`)
		}
		want := exitDenied
		if m[2] == "200" {
			want = exitOK
		}
		c := newHarness(t)
		if code := c.run(args...); code != want {
			t.Errorf("banner command %q = exit %d, want %d (# %s)\nstdout: %s\nstderr: %s", m[1], code, want, m[2], c.stdout, c.stderr)
		} else if !strings.Contains(c.stdout.String(), "status:   "+m[2]) {
			t.Errorf("banner command %q printed %q, want status %s", m[1], c.stdout, m[2])
		}
	}
	if strings.Contains(h.stderr.String(), vars["ADMIN_TOKEN"]) || strings.Contains(h.stderr.String(), vars[devSATokenVar]) {
		t.Error("a token reached the logs")
	}
	// The demo service account (docs/CONTRACT.md §8) is among the checks.
	if !regexp.MustCompile(`(?m)^agentos-authz check .*\$` + devSATokenVar + `.* # 200`).MatchString(out) {
		t.Errorf("the banner has no check with the service-account token:\n%s", out)
	}
	if !strings.Contains(h.stderr.String(), "DEVELOPMENT MODE") {
		t.Error("no development-mode warning in the logs")
	}
}
