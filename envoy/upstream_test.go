package envoy

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"google.golang.org/grpc/codes"

	"github.com/agentos-authz/agentos-authz/authz"
)

// newIdentityAuthorizer is the real pipeline with identity tokens on
// (docs/CONTRACT.md §9), signed with a fresh Ed25519 key.
func newIdentityAuthorizer(t *testing.T) *authz.Authorizer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "upstream.key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return newJWTAuthorizer(t, "upstream:\n  identity_token: true\n  signing_key_file: "+keyFile+"\n")
}

// checkIdentityToken verifies "Bearer <t>" against the authorizer's
// published JWK Set, as AgentOS does, and checks it is not the caller's.
func checkIdentityToken(t *testing.T, a *authz.Authorizer, value, caller string) {
	t.Helper()
	tok, ok := strings.CutPrefix(value, "Bearer ")
	if !ok || tok == caller || strings.Contains(value, caller) {
		t.Fatalf("upstream authorization is not a re-issued token (caller's: %v)", strings.Contains(value, caller))
	}
	set, err := jwk.Parse(a.UpstreamJWKS())
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.Parse([]byte(tok), jwt.WithKeySet(set), jwt.WithAudience("test-os"))
	if err != nil {
		t.Fatalf("identity token does not verify against the published set: %v", err)
	}
	if parsed.Subject() != "alice" {
		t.Errorf("sub = %q, want alice", parsed.Subject())
	}
}

// TestIdentityTokenGRPC: the OK response sets authorization with
// OVERWRITE_IF_EXISTS_OR_ADD, so the caller's header is replaced, never
// appended, and the token stays out of the dynamic metadata.
func TestIdentityTokenGRPC(t *testing.T) {
	a := newIdentityAuthorizer(t)
	caller := mintHS(t, "alice", "agents:read")
	in := map[string]string{"authorization": "Bearer " + caller, "x-agentos-user-id": "mallory"}
	resp, err := NewServer(a).Check(context.Background(), envoyRequest("GET", "/agents", in))
	if err != nil || codes.Code(resp.GetStatus().GetCode()) != codes.OK {
		t.Fatalf("Check = %v, %v; want OK", resp.GetStatus(), err)
	}
	ok := resp.GetOkResponse()
	n := 0
	for _, h := range ok.GetHeaders() {
		if strings.EqualFold(h.GetHeader().GetKey(), "authorization") {
			n++
			if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
				t.Errorf("authorization append action %v, want OVERWRITE_IF_EXISTS_OR_ADD", h.GetAppendAction())
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d authorization headers in the OK response, want 1", n)
	}
	up := applyOK(in, ok)
	checkIdentityToken(t, a, up["authorization"], caller)
	if up["x-agentos-user-id"] != "alice" {
		t.Errorf("x-agentos-user-id upstream = %q", up["x-agentos-user-id"])
	}
	if _, in := resp.GetDynamicMetadata().GetFields()["authorization"]; in {
		t.Error("the identity token is in the dynamic metadata")
	}
	if got := resp.GetDynamicMetadata().GetFields()["x-agentos-user-id"].GetStringValue(); got != "alice" {
		t.Errorf("metadata x-agentos-user-id = %q", got)
	}
}

// TestIdentityTokenHTTP: the 200 carries the re-issued authorization for
// the proxy to forward in place of the caller's.
func TestIdentityTokenHTTP(t *testing.T) {
	a := newIdentityAuthorizer(t)
	caller := mintHS(t, "alice", "agents:read")
	h := NewHTTPHandler(a, HTTPOptions{EchoAuthorization: true})
	r := httptest.NewRequest("GET", "/auth", nil)
	r.Header.Set("X-Original-Method", "GET")
	r.Header.Set("X-Original-Uri", "/agents")
	r.Header.Set("Authorization", "Bearer "+caller)
	got := serveCheck(t, h, r)
	if got.status != http.StatusOK {
		t.Fatalf("status %d %s", got.status, got.body)
	}
	if vs := got.header.Values("Authorization"); len(vs) != 1 {
		t.Fatalf("%d Authorization headers in the 200, want 1", len(vs))
	}
	checkIdentityToken(t, a, got.header.Get("Authorization"), caller)

	// An excluded route passes unchanged: the 200 echoes the caller's
	// Authorization (passAuthorization), so a Traefik that lists it in
	// authResponseHeaders does not strip it.
	r = httptest.NewRequest("GET", "/health", nil)
	r.Header.Set("Authorization", "Bearer "+caller)
	if got := serveCheck(t, h, r); got.status != http.StatusOK || got.header.Get("Authorization") != "Bearer "+caller {
		t.Errorf("excluded route: %d, Authorization is not the caller's", got.status)
	}
	// Sent twice: no echo (which one would the upstream want?).
	r = httptest.NewRequest("GET", "/health", nil)
	r.Header.Add("Authorization", "Bearer a")
	r.Header.Add("Authorization", "Bearer b")
	if got := serveCheck(t, h, r); got.status != http.StatusOK || len(got.header.Values("Authorization")) != 0 {
		t.Errorf("two Authorization lines: %d with %q", got.status, got.header.Values("Authorization"))
	}
	// Denied: nothing echoed.
	r = httptest.NewRequest("GET", "/config", nil)
	r.Header.Set("Authorization", "Bearer "+caller)
	if got := serveCheck(t, h, r); got.status != http.StatusForbidden || got.header.Get("Authorization") != "" {
		t.Errorf("denied: %d with an Authorization header", got.status)
	}
	// Without EchoAuthorization a reply never carries the caller's token.
	plain := NewHTTPHandler(newJWTAuthorizer(t, ""), HTTPOptions{})
	r = httptest.NewRequest("GET", "/health", nil)
	r.Header.Set("Authorization", "Bearer "+caller)
	if got := serveCheck(t, plain, r); got.status != http.StatusOK || got.header.Get("Authorization") != "" {
		t.Errorf("echo off: %d with an Authorization header", got.status)
	}
}

// TestUnavailableDenial: a fault of the service is 503 with gRPC
// UNAVAILABLE (docs/CONTRACT.md §5), on both transports.
func TestUnavailableDenial(t *testing.T) {
	d := authz.Decision{Status: 503, Reason: authz.ReasonIdentityTokenFailed, Detail: "Authentication is temporarily unavailable"}
	resp := ToCheckResponse(&d)
	if codes.Code(resp.GetStatus().GetCode()) != codes.Unavailable || resp.GetDeniedResponse().GetStatus().GetCode() != typev3.StatusCode_ServiceUnavailable {
		t.Errorf("CheckResponse %v / %v, want UNAVAILABLE / 503", resp.GetStatus(), resp.GetDeniedResponse().GetStatus())
	}
	w := httptest.NewRecorder()
	if err := WriteDecision(w, &d); err != nil || w.Code != 503 || !strings.Contains(w.Body.String(), "temporarily unavailable") {
		t.Errorf("HTTP: %d %q %v", w.Code, w.Body.String(), err)
	}
}
