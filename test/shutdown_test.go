package test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
	"github.com/agentos-authz/agentos-authz/test/harness"
)

// TestGracefulShutdown: SIGTERM drains in-flight checks, reports
// NOT_SERVING on health, then exits 0 (docs/CONTRACT.md §2). See
// harness.ExerciseDrain for how in-flight checks are held exactly.
func TestGracefulShutdown(t *testing.T) {
	h := startHS256(t)
	want := conformance.Expect{
		Status: conformance.StatusSet{200},
		Headers: map[string]conformance.HeaderExpect{
			"x-agentos-user-id": {Exact: ptr("drain-user")},
			"x-agentos-scopes":  {Exact: ptr("agents:read")},
			"x-agentos-auth":    {Exact: ptr("jwt")},
		},
	}
	rep := harness.ExerciseDrain(t.Context(), h.srv, harness.DrainOptions{
		Request: func() (harness.Built, error) {
			tok, err := h.minter.Mint(tokenSpec("drain-user", "agents:read"))
			if err != nil {
				return harness.Built{}, err
			}
			return harness.BuildRequest(conformance.Request{Method: "GET", Path: "/agents"}, map[string]string{"token": tok})
		},
		Expect: want,
	})
	for _, p := range rep.Problems {
		t.Error(p)
	}
	t.Logf("drain: %d held checks answered after SIGTERM, %d checks answered and %d refused by the loops, NOT_SERVING seen: %v, new connection during drain: %s, exit %d",
		rep.HeldAnswered, rep.LoadAnswered, rep.LoadRefused, rep.SawNotServing, rep.DuringDrainNew, rep.ExitCode)
	if t.Failed() {
		t.Log(h.srv.Tail(60))
	}
	noPanics(t, h.srv)
}

// TestAdminEndpoints: /healthz and /readyz answer 200 once the server is
// ready (docs/CONTRACT.md §2, --admin-addr).
func TestAdminEndpoints(t *testing.T) {
	h := startHS256(t)
	client := &http.Client{Timeout: 10 * time.Second}
	for _, path := range []string{"/healthz", "/readyz"} {
		t.Run(path, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+h.srv.AdminAddr+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s = %d, want 200", path, resp.StatusCode)
			}
		})
	}
	code, err := h.srv.Stop(harness.DefaultStopTimeout)
	if err != nil || code != 0 {
		t.Errorf("after SIGTERM: exit %d, %v, want exit 0\n%s", code, err, h.srv.Tail(40))
	}
}
