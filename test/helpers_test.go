package test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
	"github.com/agentos-authz/agentos-authz/test/harness"
)

// hsServer is the binary serving an HS256 configuration whose secret the
// test generated itself, so these tests need none of the conformance keys.
// args are extra serve flags (after the harness's own, so they
// win: "--http-addr", "127.0.0.1:0" turns the HTTP listener on).
type hsServer struct {
	srv    *harness.Server
	minter conformance.Minter
	secret string
}

func startHS256(t *testing.T, args ...string) hsServer {
	t.Helper()
	return startHS256With(t, `{}`, args...)
}

// startHS256With is startHS256 with more configuration: extra is a JSON
// object of top-level fields (`{"mode": "shadow"}`) added to the HS256 one.
func startHS256With(t *testing.T, extra string, args ...string) hsServer {
	t.Helper()
	bin := binary(t)
	var raw [24]byte
	_, _ = rand.Read(raw[:])
	secret := "bb-" + hex.EncodeToString(raw[:])
	keys := conformance.NewKeys(map[string][]byte{"hs.secret": []byte(secret)})
	dir := t.TempDir()
	sub := &conformance.Substituter{Keys: keys, Dir: dir}
	fields := map[string]any{"os_id": "test-os", "jwt": map[string]any{"algorithms": []string{"HS256"}, "verification_keys": []string{"@secret:hs"}}}
	if err := json.Unmarshal([]byte(extra), &fields); err != nil {
		t.Fatalf("configuration fields %s: %v", extra, err)
	}
	text, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := sub.Config(text)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := harness.Start(t.Context(), harness.Options{Binary: bin, ConfigPath: path, Args: args})
	if err != nil {
		t.Fatalf("the server did not start: %v", err)
	}
	t.Cleanup(srv.Kill)
	return hsServer{srv: srv, minter: conformance.Minter{Keys: keys}, secret: secret}
}

// tokenSpec is a valid HS256 token for user with scopes, an hour to live.
func tokenSpec(user string, scopes ...string) conformance.TokenSpec {
	claims, _ := json.Marshal(map[string]any{
		"sub": user, "aud": "test-os", "exp": "+1h", "iat": "now", "scopes": scopes,
	})
	return conformance.TokenSpec{Alg: "HS256", Key: "hs", Claims: claims}
}

// request builds GET path with "authorization: Bearer <token>" from spec.
func (h hsServer) request(t *testing.T, path string, spec conformance.TokenSpec) harness.Built {
	t.Helper()
	tok, err := h.minter.Mint(spec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := harness.BuildRequest(conformance.Request{Method: "GET", Path: path}, map[string]string{"token": tok})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ptr[T any](v T) *T { return &v }

// noPanics fails when the process output shows a panic or a data race.
func noPanics(t *testing.T, srv *harness.Server) {
	t.Helper()
	out := srv.Output()
	for _, bad := range []string{"panic:", "DATA RACE", "fatal error:"} {
		if strings.Contains(out, bad) {
			t.Errorf("the server's output holds %q\n%s", bad, srv.Tail(60))
		}
	}
}
