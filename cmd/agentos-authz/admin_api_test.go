package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/agentos-authz/agentos-authz/internal/poll"
	authzv1 "github.com/agentos-authz/agentos-authz/proto/agentos/authz/v1"
)

// TestPolicyAPI serves a real configuration and uses the policy API on the
// admin listener: Explain, ListRoutes, GetConfig (no secret in it),
// reflection; the ext_authz gRPC listener does not serve it; check --server
// on the admin address prints Explain's full explanation.
func TestPolicyAPI(t *testing.T) {
	h := newHarness(t)
	prefix, pub := keyPair(t, h)
	const secretKey = "sk-very-secret-security-key-0123456789"
	cfg := keyConfig(pub, "ES256")
	cfg["security_key"] = secretKey
	cfg["security_key_migration"] = true
	cfg["scope_mappings"] = map[string]any{
		"DELETE /agents/*": []string{"agent_os:admin"},
		"GET /reports/*":   []string{"reports:read"},
	}
	cfgPath := writeConfig(t, cfg)
	text, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	r := startServe(t, h, nil, 0, "--config", cfgPath)
	r.waitServing(t)

	admin, err := grpc.NewClient(r.adminAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	api := authzv1.NewPolicyServiceClient(admin)
	ctx := t.Context()

	tok := mintWith(t, h, prefix, "agents:read")
	ex, err := api.Explain(ctx, &authzv1.ExplainRequest{Method: "POST", Path: "/agents/web/runs", Token: tok})
	if err != nil {
		t.Fatalf("Explain: %v", err)
	}
	if ex.GetStatus() != 403 || ex.GetDecision() != authzv1.Decision_DECISION_DENY ||
		ex.GetDetail() != "Insufficient permissions. Required scope(s): agents:run" ||
		ex.GetRule() != "POST /agents/*/runs" || ex.GetStep() != authzv1.Step_STEP_AUTHORIZATION ||
		!slices.Equal(ex.GetMissingScopes(), []string{"agents:run"}) || ex.GetUserId() != "u1" {
		t.Errorf("Explain(POST /agents/web/runs, agents:read) = %v", ex)
	}
	ex, err = api.Explain(ctx, &authzv1.ExplainRequest{Path: "/agents", Token: tok, Headers: map[string]string{"X-Agentos-User-Id": "mallory"}})
	if err != nil {
		t.Fatalf("Explain: %v", err)
	}
	if ex.GetStatus() != 200 || len(ex.GetMatchedScopes()) != 1 || ex.GetMatchedScopes()[0].GetBy() != "agents:read" ||
		!slices.ContainsFunc(ex.GetUpstreamHeaders(), func(h *authzv1.Header) bool { return h.GetName() == "x-agentos-user-id" && h.GetValue() == "u1" }) {
		t.Errorf("Explain(GET /agents) = %v", ex)
	}
	ex, err = api.Explain(ctx, &authzv1.ExplainRequest{Path: "/agents"})
	if err != nil || ex.GetStatus() != 401 || ex.GetStep() != authzv1.Step_STEP_AUTHENTICATION {
		t.Errorf("Explain(no token) = %v, %v; want 401 at step 4", ex, err)
	}

	routes, err := api.ListRoutes(ctx, &authzv1.ListRoutesRequest{})
	if err != nil {
		t.Fatalf("ListRoutes: %v", err)
	}
	var del, reports *authzv1.Route
	for _, rt := range routes.GetRoutes() {
		switch rt.GetKey() {
		case "DELETE /agents/*":
			del = rt
		case "GET /reports/*":
			reports = rt
		}
	}
	if del == nil || !del.GetOverrides() || del.GetOrigin() != authzv1.Origin_ORIGIN_CUSTOM || !slices.Equal(del.GetScopes(), []string{"agent_os:admin"}) {
		t.Errorf("ListRoutes DELETE /agents/* = %v, want a custom override needing agent_os:admin", del)
	}
	if reports == nil || reports.GetOverrides() || reports.GetOrigin() != authzv1.Origin_ORIGIN_CUSTOM {
		t.Errorf("ListRoutes GET /reports/* = %v, want a new custom route", reports)
	}
	if last := routes.GetRoutes()[len(routes.GetRoutes())-1]; last.GetKey() != "GET /reports/*" {
		t.Errorf("last route = %s, want the new custom key after the defaults", last.GetKey())
	}

	gc, err := api.GetConfig(ctx, &authzv1.GetConfigRequest{})
	if err != nil {
		t.Fatalf("GetConfig: %v", err)
	}
	js, err := json.Marshal(gc.GetConfig().AsMap())
	if err != nil {
		t.Fatal(err)
	}
	keyBody := strings.Join(strings.Split(strings.TrimSpace(pub), "\n")[1:3], "")
	for _, secret := range []string{secretKey, keyBody, tok} {
		if strings.Contains(string(js), secret) || strings.Contains(gc.String(), secret) {
			t.Errorf("GetConfig holds a secret (%.12s...): %s", secret, js)
		}
	}
	if !slices.Contains(gc.GetRedactedFields(), "security_key") || !slices.Contains(gc.GetRedactedFields(), "jwt.verification_keys") {
		t.Errorf("redacted fields = %q, want security_key and jwt.verification_keys", gc.GetRedactedFields())
	}
	if m := gc.GetConfig().AsMap(); m["os_id"] != "test-os" || m["security_key_migration"] != true {
		t.Errorf("GetConfig lost the settings that are no secret: %s", js)
	}
	if gc.GetPath() != cfgPath || gc.GetSha256() != sha256Hex(text) || time.Since(gc.GetLoadedAt().AsTime()) > time.Hour {
		t.Errorf("GetConfig source = %q %q %v, want %q %q and a load time", gc.GetPath(), gc.GetSha256(), gc.GetLoadedAt().AsTime(), cfgPath, sha256Hex(text))
	}

	if names := reflectedServices(t, admin); !slices.Contains(names, authzv1.PolicyService_ServiceDesc.ServiceName) {
		t.Errorf("admin reflection lists %q, want the PolicyService", names)
	}
	// Never on the ext_authz listener Envoy reaches.
	_, err = authzv1.NewPolicyServiceClient(r.conn).ListRoutes(ctx, &authzv1.ListRoutesRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("ListRoutes on the ext_authz listener = %v, want Unimplemented", err)
	}
	if names := reflectedServices(t, r.conn); slices.Contains(names, authzv1.PolicyService_ServiceDesc.ServiceName) {
		t.Errorf("the ext_authz listener reflects %q", names)
	}
	// The plain admin endpoints still answer HTTP/1.1.
	if code := r.get(t, "/readyz"); code != 200 {
		t.Errorf("GET /readyz = %d", code)
	}

	// check --server: the admin address explains, the ext_authz one checks.
	hc := newHarness(t)
	if code := hc.run("check", "--server", r.adminAddr, "--token", tok, "--method", "POST", "--path", "/agents/web/runs"); code != exitDenied {
		t.Errorf("check --server admin = %d, want 1\n%s%s", code, hc.stdout, hc.stderr)
	}
	for _, want := range []string{"status:   403", "rule:     POST /agents/*/runs", "missing:  agents:run", "step:     5 (authorization)"} {
		if !strings.Contains(hc.stdout.String(), want) {
			t.Errorf("check --server admin output lacks %q:\n%s", want, hc.stdout)
		}
	}
	if strings.Contains(hc.stdout.String(), tok) {
		t.Error("check printed the token")
	}
	if code := hc.run("check", "--server", r.grpcAddr, "--token", tok, "--path", "/agents"); code != exitOK || !strings.Contains(hc.stdout.String(), "decision: allow") {
		t.Errorf("check --server ext_authz = %d\n%s%s", code, hc.stdout, hc.stderr)
	}
	if r.stop(t) != 0 {
		t.Error("serve did not exit 0")
	}
}

// TestAdminAddrOff: --admin-addr off serves no admin listener at all.
func TestAdminAddrOff(t *testing.T) {
	h := newHarness(t)
	_, pub := keyPair(t, h)
	cfgPath := writeConfig(t, keyConfig(pub, "ES256"))
	s := h.sys("")
	exit := make(chan int, 1)
	runCtx, stop := context.WithCancel(t.Context())
	defer stop()
	go func() {
		exit <- run(runCtx, []string{"serve", "--config", cfgPath, "--grpc-addr", "127.0.0.1:0", "--http-addr", "off", "--admin-addr", "off"}, s)
	}()
	poll.For(t, "the serving log line", func() bool { return strings.Contains(h.stderr.String(), `"msg":"serving"`) })
	if _, admin := listeningAddrs(h.stderr.String()); admin != "off" {
		t.Errorf("admin_addr logged %q, want off", admin)
	}
	stop()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("serve --admin-addr off exit %d\n%s", code, h.stderr)
		}
	case <-time.After(waitTimeout):
		t.Fatal("serve did not stop")
	}
}

// mintWith mints an ES256 token for sub u1, audience test-os, with scopes.
func mintWith(t *testing.T, h *harness, prefix, scopes string) string {
	t.Helper()
	if code := h.run("token", "--key", prefix+".key.pem", "--alg", "ES256", "--sub", "u1", "--aud", "test-os", "--scopes", scopes); code != 0 {
		t.Fatalf("token = %d: %s", code, h.stderr)
	}
	return strings.TrimSpace(h.stdout.String())
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
