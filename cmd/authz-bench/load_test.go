package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
)

// serve runs srv on 127.0.0.1:0 for the test and returns its address.
func serve(t *testing.T, srv *grpc.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// startTestNoop runs the no-op server in this process.
func startTestNoop(t *testing.T) string {
	t.Helper()
	s, err := startNoop("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(5 * time.Second); err != nil {
			t.Errorf("stopping the no-op server: %v", err)
		}
	})
	return s.Addr()
}

// hsPool builds n HS256 requests for the test.
func hsPool(t *testing.T, n int, mix float64) []wireRequest {
	t.Helper()
	signers, err := signersFor("HS256", signingKeys{hmac: []byte("test-secret-test-secret-test-secret")})
	if err != nil {
		t.Fatal(err)
	}
	reqs, err := buildPool(t.Context(), poolSpec{
		Signers: signers, Count: n, Mix: mix, Fixtures: benchFixtures(), Claims: claimSpec{TTL: time.Hour}, Seed: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	return reqs
}

// checkCounts checks that a result's counts add up.
func checkCounts(t *testing.T, r *Result) {
	t.Helper()
	if r.Requests == 0 {
		t.Fatal("no request was answered")
	}
	if r.Allowed+r.Denied+r.Errors != r.Requests {
		t.Errorf("allowed %d + denied %d + errors %d != requests %d", r.Allowed, r.Denied, r.Errors, r.Requests)
	}
	var byStatus int64
	for _, n := range r.DeniedByStatus {
		byStatus += n
	}
	if byStatus != r.Denied {
		t.Errorf("denied by status %v sums to %d, want denied %d", r.DeniedByStatus, byStatus, r.Denied)
	}
	if r.RPS <= 0 || r.Seconds <= 0 {
		t.Errorf("rps %v over %v s, want both > 0", r.RPS, r.Seconds)
	}
}

func TestRunLoadNoop(t *testing.T) {
	addr := startTestNoop(t)
	reqs := hsPool(t, 40, 0.75)
	opt := loadOptions{
		Target: addr, Conns: 2, Concurrency: 8,
		Warmup: 0, Duration: 300 * time.Millisecond, Timeout: 5 * time.Second,
		ServerPID:  os.Getpid(), // the no-op server runs in this process
		ServerCore: 0,
	}
	res, err := runLoad(t.Context(), opt, &workload{reqs: reqs})
	if err != nil {
		t.Fatalf("runLoad: %v", err)
	}
	checkCounts(t, res)
	if res.Errors != 0 || res.Denied != 0 || res.Allowed != res.Requests {
		t.Errorf("against the no-op server: %s; want every request allowed", outcomeLine(res))
	}
	// With no warm-up the run sent requests 0..n-1 of the pool, in turn:
	// every one whose token should be denied is an unexpected allow.
	var want int64
	for i := range res.Requests {
		if !reqs[i%int64(len(reqs))].allow {
			want++
		}
	}
	if res.Unexpected != want {
		t.Errorf("unexpected = %d, want %d (the denying tokens among the %d sent)", res.Unexpected, want, res.Requests)
	}
	l := res.Latency
	if !(l.P50 > 0 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("latency %+v: want 0 < p50 <= p90 <= p99 <= p99.9 <= max", l)
	}
	if res.OtherOnServerCore < 0 || res.OtherOnServerCore > 2 {
		t.Errorf("other work on CPU 0: %v of the time, want a share", res.OtherOnServerCore)
	}
	if res.ServerCPU <= 0 || res.LoadCPU <= 0 {
		t.Errorf("server CPU %v µs/check, load CPU %v µs/check; want both > 0", res.ServerCPU, res.LoadCPU)
	}
	if res.Pool != 40 || res.Concurrency != 8 || res.Conns != 2 || res.Fresh || res.Exhausted {
		t.Errorf("result echoes pool %d conc %d conns %d fresh %v exhausted %v", res.Pool, res.Concurrency, res.Conns, res.Fresh, res.Exhausted)
	}
}

// rbacCheck is a small, independent reading of the AgentOS rules for the
// bench fixtures' routes (docs/CONTRACT.md §5): it decides from the token's
// scopes claim, without verifying the signature.
type rbacCheck struct {
	authv3.UnimplementedAuthorizationServer
}

func (rbacCheck) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	h := req.GetAttributes().GetRequest().GetHttp()
	auth := h.GetHeaders()["authorization"]
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		if hv.GetKey() == "authorization" {
			auth = string(hv.GetRawValue())
		}
	}
	var claims struct {
		Scopes []string `json:"scopes"`
	}
	parts := strings.Split(strings.TrimPrefix(auth, "Bearer "), ".")
	if len(parts) != 3 {
		return deny(401), nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(payload, &claims) != nil {
		return deny(401), nil
	}
	path, _, _ := strings.Cut(h.GetPath(), "?")
	path = strings.TrimSuffix(path, "/")
	seg := strings.Split(strings.TrimPrefix(path, "/"), "/")
	family, id, action := seg[0], "", "read"
	if len(seg) > 1 {
		id = seg[1]
	}
	if h.GetMethod() == "POST" {
		action = "run"
	}
	listing := id == ""
	for _, s := range claims.Scopes {
		p := strings.Split(s, ":")
		switch {
		case s == "agent_os:admin",
			len(p) == 2 && p[0] == family && p[1] == action,
			len(p) == 3 && p[0] == family && p[2] == action && (p[1] == "*" || p[1] == id || listing):
			return &authv3.CheckResponse{Status: &rpcstatus.Status{}}, nil
		}
	}
	return deny(403), nil
}

func deny(code typev3.StatusCode) *authv3.CheckResponse {
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: 7},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: code}}},
	}
}

func TestRunLoadOutcomesMatchRBAC(t *testing.T) {
	srv := grpc.NewServer()
	authv3.RegisterAuthorizationServer(srv, rbacCheck{})
	addr := serve(t, srv)
	reqs := hsPool(t, 50, 0.8)
	res, err := runLoad(t.Context(), loadOptions{
		Target: addr, Conns: 1, Concurrency: 4, Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond, Timeout: 5 * time.Second,
	}, &workload{reqs: reqs})
	if err != nil {
		t.Fatalf("runLoad: %v", err)
	}
	checkCounts(t, res)
	if res.Unexpected != 0 || res.Errors != 0 {
		t.Errorf("%s; want the tokens' scopes to decide every request as expected", outcomeLine(res))
	}
	if res.Denied == 0 || res.Allowed == 0 || res.DeniedByStatus["403"] != res.Denied {
		t.Errorf("%s; want both allowed and denied (403) requests", outcomeLine(res))
	}
	if res.ServerPID != 0 || res.ServerCPU != 0 {
		t.Errorf("server CPU reported (%v) without --server-pid", res.ServerCPU)
	}
}

func TestRunLoadCountsErrors(t *testing.T) {
	addr := serve(t, grpc.NewServer()) // no Authorization service: Unimplemented
	res, err := runLoad(t.Context(), loadOptions{
		Target: addr, Conns: 1, Concurrency: 2, Duration: 100 * time.Millisecond, Timeout: 5 * time.Second,
	}, &workload{reqs: hsPool(t, 5, 1)})
	if err != nil {
		t.Fatalf("runLoad: %v", err)
	}
	checkCounts(t, res)
	if res.Errors != res.Requests || !strings.HasPrefix(res.FirstError, "Unimplemented: ") {
		t.Errorf("%s, first error %q; want every call failed Unimplemented", outcomeLine(res), res.FirstError)
	}
}

func TestRunLoadFreshSendsEachOnce(t *testing.T) {
	addr := startTestNoop(t)
	reqs := hsPool(t, 30, 0.5)
	res, err := runLoad(t.Context(), loadOptions{
		Target: addr, Conns: 1, Concurrency: 3,
		// The run must end when the 30 tokens are used, long before this.
		Duration: time.Minute, Timeout: 5 * time.Second,
	}, &workload{reqs: reqs, fresh: true})
	if err != nil {
		t.Fatalf("runLoad: %v", err)
	}
	if res.Requests != 30 || !res.Exhausted || !res.Fresh {
		t.Errorf("fresh run: %d requests, exhausted %v, fresh %v; want 30, true, true", res.Requests, res.Exhausted, res.Fresh)
	}
	if res.Unexpected != 15 {
		t.Errorf("fresh run against the no-op server: unexpected %d, want the 15 denying tokens", res.Unexpected)
	}
}

func TestRunLoadFreshWarmupKeepsMostTokens(t *testing.T) {
	addr := startTestNoop(t)
	res, err := runLoad(t.Context(), loadOptions{
		Target: addr, Conns: 1, Concurrency: 2,
		Warmup: time.Minute, Duration: time.Minute, Timeout: 5 * time.Second,
	}, &workload{reqs: hsPool(t, 50, 1), fresh: true})
	if err != nil {
		t.Fatalf("runLoad: %v", err)
	}
	// The warm-up stops at a fifth (10) of the tokens, plus at most one
	// cursor step per caller that found the limit reached.
	if res.Requests < 50-10-2 || res.Requests > 40 {
		t.Errorf("measured %d fresh requests, want 38..40 of 50 after the warm-up's fifth", res.Requests)
	}
}

func TestRunLoadUnreachable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	_, err = runLoad(t.Context(), loadOptions{
		Target: addr, Conns: 1, Concurrency: 1, Duration: time.Second, Timeout: 300 * time.Millisecond,
	}, &workload{reqs: []wireRequest{{body: nil}}})
	if err == nil || !strings.Contains(err.Error(), "not reachable within 300ms") {
		t.Errorf("runLoad(closed port) error = %v, want not reachable", err)
	}
}

// firstCallCheck answers OK and closes called on its first call.
type firstCallCheck struct {
	authv3.UnimplementedAuthorizationServer
	once   *sync.Once
	called chan struct{}
}

func (c firstCallCheck) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	c.once.Do(func() { close(c.called) })
	return &authv3.CheckResponse{Status: &rpcstatus.Status{}}, nil
}

func TestRunLoadInterrupted(t *testing.T) {
	fc := firstCallCheck{once: new(sync.Once), called: make(chan struct{})}
	srv := grpc.NewServer()
	authv3.RegisterAuthorizationServer(srv, fc)
	addr := serve(t, srv)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	reqs := hsPool(t, 5, 1)
	go func() {
		_, err := runLoad(ctx, loadOptions{
			Target: addr, Conns: 1, Concurrency: 2, Duration: time.Minute, Timeout: 5 * time.Second,
		}, &workload{reqs: reqs})
		done <- err
	}()
	select {
	case <-fc.called:
	case <-time.After(30 * time.Second):
		t.Fatal("no call reached the server")
	}
	cancel() // mid-run
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "interrupted") {
			t.Errorf("runLoad after cancel = %v, want interrupted", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("runLoad did not return after its context was cancelled")
	}
}

func TestLoadOptionsValidate(t *testing.T) {
	ok := loadOptions{Target: "127.0.0.1:1", Conns: 1, Concurrency: 1, Duration: time.Second, Timeout: time.Second}
	tests := []struct {
		name    string
		mod     func(*loadOptions)
		wantErr string
	}{
		{name: "ok", mod: func(*loadOptions) {}},
		{name: "no target", mod: func(o *loadOptions) { o.Target = "" }, wantErr: "--target: empty"},
		{name: "no conns", mod: func(o *loadOptions) { o.Conns = 0 }, wantErr: "--conns 0"},
		{name: "no concurrency", mod: func(o *loadOptions) { o.Concurrency = -1 }, wantErr: "--concurrency -1"},
		{name: "negative warm-up", mod: func(o *loadOptions) { o.Warmup = -time.Second }, wantErr: "--warmup -1s"},
		{name: "zero duration", mod: func(o *loadOptions) { o.Duration = 0 }, wantErr: "--duration 0s"},
		{name: "zero timeout", mod: func(o *loadOptions) { o.Timeout = 0 }, wantErr: "--timeout 0s"},
		{name: "bad pid", mod: func(o *loadOptions) { o.ServerPID = -2 }, wantErr: "--server-pid -2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.mod(&o)
			err := o.validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("validate(%s) = %v, want nil", tc.name, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("validate(%s) = %v, want it to contain %q", tc.name, err, tc.wantErr)
			}
		})
	}
}
