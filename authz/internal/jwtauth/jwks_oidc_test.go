package jwtauth

import (
	"testing"

	"github.com/oauth2-proxy/mockoidc"
	"go.uber.org/zap"

	"github.com/agentos-authz/agentos-authz/internal/jwttest"
	"github.com/agentos-authz/agentos-authz/internal/poll"
)

// TestOIDCDiscoveryIssuerMismatch: a discovery document for another
// issuer is refused, and the service stays not ready.
func TestOIDCDiscoveryIssuerMismatch(t *testing.T) {
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatalf("mockoidc: %v", err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	// The same server under another path: its document names m.Issuer().
	obs := &jwttest.Observer{}
	src := startRemote(t, remoteJWKSOptions{Issuer: m.Addr() + "/oidc/", Observer: obs, Logger: zap.NewNop()})
	poll.For(t, "discovery", func() bool { return len(faults(obs)) > 0 })
	if f := faults(obs); f[0] != "" || src.URL() == "" {
		t.Fatalf("faults %q, URL %q: a trailing slash should still match the issuer", f, src.URL())
	}

	obs = &jwttest.Observer{}
	bad := startRemote(t, remoteJWKSOptions{Issuer: m.Addr(), Observer: obs, Logger: zap.NewNop()})
	poll.For(t, "a failed discovery", func() bool { return len(faults(obs)) > 0 })
	if f := faults(obs); f[0] == "" || bad.Ready() || bad.URL() != "" {
		t.Fatalf("discovery at %s: faults %q, ready %v, URL %q; want a failure", m.Addr(), f, bad.Ready(), bad.URL())
	}
}
