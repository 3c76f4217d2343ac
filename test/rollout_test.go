package test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
	"github.com/agentos-authz/agentos-authz/internal/poll"
	"github.com/agentos-authz/agentos-authz/test/harness"
)

// TestShutdownDelayNoFailedChecks: the real binary with --shutdown-delay,
// loops of concurrent Check calls (each with a fresh token, a full
// verification) across a real SIGTERM. Health turns NOT_SERVING and
// /readyz 503 at once, yet not one check sent during the delay fails, on
// the open connection or on a new one; then the process exits 0 (README
// "Rollouts without failed checks").
func TestShutdownDelayNoFailedChecks(t *testing.T) {
	const delay = 2 * time.Second
	h := startHS256(t, "--shutdown-delay", delay.String())
	build := func() (harness.Built, error) {
		tok, err := h.minter.Mint(tokenSpec("rollout-user", "agents:read"))
		if err != nil {
			return harness.Built{}, err
		}
		return harness.BuildRequest(conformance.Request{Method: "GET", Path: "/agents"}, map[string]string{"token": tok})
	}
	type record struct {
		start, end time.Time
		err        error
		code       codes.Code
	}
	var (
		mu      sync.Mutex
		records []record
	)
	one := func(c authv3.AuthorizationClient) record {
		b, err := build()
		if err != nil {
			return record{start: time.Now(), end: time.Now(), err: err}
		}
		start := time.Now()
		resp, err := c.Check(context.WithoutCancel(t.Context()), b.Check)
		return record{start: start, end: time.Now(), err: err, code: codes.Code(resp.GetStatus().GetCode())}
	}
	client := authv3.NewAuthorizationClient(h.srv.Conn())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := one(client)
				mu.Lock()
				records = append(records, r)
				mu.Unlock()
				if r.err != nil {
					return
				}
			}
		})
	}
	poll.For(t, "checks before SIGTERM", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(records) >= 30
	})

	sigAt := time.Now()
	if err := h.srv.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	health := healthpb.NewHealthClient(h.srv.Conn())
	poll.For(t, "NOT_SERVING after SIGTERM", func() bool {
		resp, err := health.Check(t.Context(), &healthpb.HealthCheckRequest{})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING
	})
	notServingAfter := time.Since(sigAt)
	readyStatus, readyBody := getReadyz(t, h.srv.AdminAddr)
	if readyStatus != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz during the delay = %d %s, want 503", readyStatus, readyBody)
	}
	fresh, err := harness.Dial(h.srv.GRPCAddr)
	if err != nil {
		t.Fatal(err)
	}
	if r := one(authv3.NewAuthorizationClient(fresh)); r.err != nil || r.code != codes.OK {
		t.Errorf("Check on a new connection during the delay = %v %v, want OK", r.code, r.err)
	}
	_ = fresh.Close()

	code, err := h.srv.Wait(harness.DefaultStopTimeout)
	exitAfter := time.Since(sigAt)
	close(stop)
	wg.Wait()
	if err != nil || code != 0 {
		t.Errorf("after SIGTERM: exit %d, %v, want 0\n%s", code, err, h.srv.Tail(40))
	}
	if exitAfter < delay {
		t.Errorf("exited %s after SIGTERM, before the %s delay", exitAfter, delay)
	}
	during, failed := 0, 0
	for _, r := range records {
		if !r.start.After(sigAt) || r.end.After(sigAt.Add(delay)) {
			continue
		}
		during++
		if r.err != nil || r.code != codes.OK {
			failed++
			t.Errorf("Check %s after SIGTERM, during the delay = %v %v, want OK", r.start.Sub(sigAt).Round(time.Millisecond), r.code, r.err)
		}
	}
	if during < 30 {
		t.Errorf("%d checks during the delay, want the loops to keep going (30 or more)", during)
	}
	t.Logf("NOT_SERVING %s after SIGTERM; %d checks during the %s delay, %d failed; exit after %s",
		notServingAfter.Round(time.Millisecond), during, delay, failed, exitAfter.Round(time.Millisecond))
	noPanics(t, h.srv)
}

// getReadyz returns /readyz's status and its JSON body, which must decode.
func getReadyz(t *testing.T, addr string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Ready      bool `json:"ready"`
		Conditions []struct {
			Name string `json:"name"`
			OK   bool   `json:"ok"`
		} `json:"conditions"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || len(doc.Conditions) == 0 {
		t.Errorf("GET /readyz body %q is not the JSON conditions (%v)", body, err)
	}
	return resp.StatusCode, string(body)
}
