package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/agentos-authz/agentos-authz/envoy"
	"github.com/agentos-authz/agentos-authz/internal/poll"
)

// readyz fetches /readyz and decodes its JSON body.
func (r *running) readyz(t *testing.T) (int, readyzBody) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+r.adminAddr+"/readyz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var body readyzBody
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET /readyz content-type = %q, want application/json", ct)
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("GET /readyz body %q: %v", raw, err)
	}
	return resp.StatusCode, body
}

// conditionOf returns the named condition of a /readyz body.
func conditionOf(b readyzBody, name string) (condition, bool) {
	for _, c := range b.Conditions {
		if c.Name == name {
			return c, true
		}
	}
	return condition{}, false
}

// TestReadyzConditions: /readyz names every condition, 503 with the
// failing one's detail until the keys are loaded, 200 once serving, 503
// with not_draining false once SIGTERM came.
func TestReadyzConditions(t *testing.T) {
	fake := newBlockingAuthz(false)
	r := startServe(t, newHarness(t), fake.factory, waitTimeout)
	var body readyzBody
	poll.For(t, "config_loaded", func() bool {
		status, b := r.readyz(t)
		if status != http.StatusServiceUnavailable || b.Ready {
			t.Fatalf("GET /readyz before the keys = %d %+v, want 503 not ready", status, b)
		}
		c, _ := conditionOf(b, condConfig)
		body = b
		return c.OK
	})
	var names []string
	for _, c := range body.Conditions {
		names = append(names, c.Name)
	}
	if got, want := strings.Join(names, ","), condConfig+","+condKeys+","+condDraining; got != want {
		t.Errorf("conditions = %s, want %s", got, want)
	}
	if c, _ := conditionOf(body, condKeys); c.OK || !strings.Contains(c.Detail, "keys") {
		t.Errorf("keys_loaded before ready = %+v, want false with a detail", c)
	}
	fake.setReady()
	r.waitServing(t)
	status, body := r.readyz(t)
	if status != http.StatusOK || !body.Ready {
		t.Fatalf("GET /readyz when serving = %d %+v, want 200 ready", status, body)
	}
	for _, c := range body.Conditions {
		if !c.OK || c.Detail != "" {
			t.Errorf("condition %+v when serving, want ok without detail", c)
		}
	}
	// A check in flight holds the drain, so the admin listener is still
	// up to answer while draining.
	inFlight := make(chan error, 1)
	go func() {
		_, err := r.check(t.Context(), "GET", "/agents", "")
		inFlight <- err
	}()
	<-fake.entered
	r.cancel()
	poll.For(t, "/readyz 503 after SIGTERM", func() bool {
		status, body = r.readyz(t)
		return status == http.StatusServiceUnavailable
	})
	if c, _ := conditionOf(body, condDraining); c.OK || c.Detail == "" {
		t.Errorf("not_draining after SIGTERM = %+v, want false with a detail", c)
	}
	close(fake.release)
	if err := <-inFlight; err != nil {
		t.Errorf("the check in flight during the drain: %v", err)
	}
}

func TestReadyConditionsRegistry(t *testing.T) {
	var rc readyConditions
	if ok, _ := rc.evaluate(); ok {
		t.Error("no condition registered: ready, want not ready")
	}
	db := false
	rc.register("config_loaded", func() (bool, string) { return true, "" })
	rc.register("service_accounts_db", func() (bool, string) { return db, "database unreachable" })
	ok, conds := rc.evaluate()
	if ok || len(conds) != 2 || conds[1] != (condition{Name: "service_accounts_db", Detail: "database unreachable"}) {
		t.Errorf("evaluate = %v %+v, want not ready because of service_accounts_db", ok, conds)
	}
	db = true
	if ok, _ := rc.evaluate(); !ok {
		t.Error("every condition holds: not ready, want ready")
	}
	// A component turned off by a reload takes its condition away.
	db = false
	rc.remove("service_accounts_db")
	rc.remove("never_registered")
	if ok, conds := rc.evaluate(); !ok || len(conds) != 1 || conds[0].Name != "config_loaded" {
		t.Errorf("after remove: evaluate = %v %+v, want ready with config_loaded alone", ok, conds)
	}
}

// TestServeShutdownDelay runs the real service with --shutdown-delay and
// loops of concurrent Check calls over gRPC across SIGTERM: health turns
// NOT_SERVING and /readyz 503 at once, yet every check sent during the
// delay, on the open connections and on new ones, is answered; serve
// exits 0 no sooner than the delay.
func TestServeShutdownDelay(t *testing.T) {
	const delay = 1500 * time.Millisecond
	h := newHarness(t)
	_, pub := keyPair(t, h)
	srv := newHarness(t)
	r := startServe(t, srv, nil, 0, "--config", writeConfig(t, keyConfig(pub, "ES256")), "--shutdown-delay", delay.String())
	r.waitServing(t)

	type record struct {
		start, end time.Time
		err        error
		code       codes.Code
	}
	var (
		mu      sync.Mutex
		records []record
	)
	checkOnce := func(c authv3.AuthorizationClient) record {
		start := time.Now()
		// An excluded route: allowed without a token, a full decision.
		resp, err := c.Check(context.WithoutCancel(t.Context()), envoy.NewCheckRequest(envoy.RequestSpec{Path: "/health"}))
		return record{start: start, end: time.Now(), err: err, code: codes.Code(resp.GetStatus().GetCode())}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := authv3.NewAuthorizationClient(r.conn)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				rec := checkOnce(client)
				mu.Lock()
				records = append(records, rec)
				mu.Unlock()
				if rec.err != nil {
					return
				}
			}
		})
	}
	poll.For(t, "checks answered before SIGTERM", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(records) >= 20
	})

	sigAt := time.Now()
	r.cancel() // what SIGTERM does
	st, err := r.health(t.Context(), "")
	if err != nil || st != healthpb.HealthCheckResponse_NOT_SERVING {
		// Health turns at once: poll only for the goroutine to run.
		poll.For(t, "NOT_SERVING after SIGTERM", func() bool {
			st, err = r.health(t.Context(), "")
			return err == nil && st == healthpb.HealthCheckResponse_NOT_SERVING
		})
	}
	if status, _ := r.readyz(t); status != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz during the shutdown delay = %d, want 503", status)
	}
	// A proxy that has not yet learnt of the termination opens a new
	// connection: it is answered too.
	fresh, err := grpc.NewClient(r.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if rec := checkOnce(authv3.NewAuthorizationClient(fresh)); rec.err != nil || rec.code != codes.OK {
		t.Errorf("Check on a new connection during the delay = %v %v, want OK", rec.code, rec.err)
	}
	code := r.stop(t)
	exitAt := time.Now()
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Errorf("serve = exit %d, want 0", code)
	}
	if exitAt.Sub(sigAt) < delay {
		t.Errorf("serve exited %s after SIGTERM, want at least the delay %s", exitAt.Sub(sigAt), delay)
	}
	var during, failed int
	for _, rec := range records {
		if !rec.start.After(sigAt) || rec.end.After(sigAt.Add(delay)) {
			continue
		}
		during++
		if rec.err != nil || rec.code != codes.OK {
			failed++
			t.Errorf("Check during the delay (%s after SIGTERM) = %v %v, want OK", rec.start.Sub(sigAt), rec.code, rec.err)
		}
	}
	if during < 20 {
		t.Errorf("%d checks during the delay, want the loops to keep running (at least 20)", during)
	}
	t.Logf("%d checks answered during the %s delay, %d failed", during, delay, failed)
	logs := srv.stderr.String()
	if !strings.Contains(logs, `"msg":"shutdown delay: NOT_SERVING, still answering checks"`) {
		t.Errorf("logs lack the shutdown delay line:\n%s", logs)
	}
}

// TestServeShadowMode: mode: shadow warns loudly at start and shows on
// /readyz without making the service unready; a would-be denial passes.
func TestServeShadowMode(t *testing.T) {
	h := newHarness(t)
	_, pub := keyPair(t, h)
	cfg := keyConfig(pub, "ES256")
	cfg["mode"] = "shadow"
	srv := newHarness(t)
	r := startServe(t, srv, nil, 0, "--config", writeConfig(t, cfg))
	r.waitServing(t)
	status, body := r.readyz(t)
	c, ok := conditionOf(body, condShadow)
	if status != http.StatusOK || !ok || !c.OK || !strings.Contains(c.Detail, "SHADOW MODE") {
		t.Errorf("GET /readyz in shadow mode = %d %+v, want 200 with the shadow_mode warning", status, body)
	}
	if !strings.Contains(srv.stderr.String(), `"level":"warn","ts":`) || !strings.Contains(srv.stderr.String(), "SHADOW MODE") {
		t.Errorf("no shadow-mode warning in the logs:\n%s", srv.stderr)
	}
	resp, err := r.check(t.Context(), "GET", "/agents", "")
	if err != nil {
		t.Fatal(err)
	}
	if codes.Code(resp.GetStatus().GetCode()) != codes.OK {
		t.Errorf("Check without a credential in shadow mode = %v, want OK", resp)
	}
}

// TestCheckShadowMode: the offline check prints the decision enforce mode
// would make, says shadow mode lets it through, and exits by the decision.
func TestCheckShadowMode(t *testing.T) {
	h := newHarness(t)
	_, pub := keyPair(t, h)
	cfg := keyConfig(pub, "ES256")
	cfg["mode"] = "shadow"
	path := writeConfig(t, cfg)
	c := newHarness(t)
	args := []string{"check", "--config", path, "--method", "GET", "--path", "/agents"}
	if code := c.run(args...); code != exitDenied {
		t.Errorf("%s = exit %d, want %d (the would-be decision)\n%s%s", call(args), code, exitDenied, c.stdout, c.stderr)
	}
	out := c.stdout.String()
	for _, want := range []string{"status:   401", "mode:     shadow", "upstream: x-agentos-shadow-decision: 401 missing_credential"} {
		if !strings.Contains(out, want) {
			t.Errorf("%s printed %q, want %q", call(args), out, want)
		}
	}
}
