package authz

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentos-authz/agentos-authz/authz/serviceaccount"
	"github.com/agentos-authz/agentos-authz/internal/jwttest"
	"github.com/agentos-authz/agentos-authz/internal/poll"
)

// readyWait bounds a wait for ReadyC (a failure guard, never a pause).
const readyWait = 20 * time.Second

// waitReadyC fails t unless a's ReadyC is closed within readyWait.
func waitReadyC(t *testing.T, a *Authorizer, what string) {
	t.Helper()
	select {
	case <-a.ReadyC():
	case <-time.After(readyWait):
		t.Fatalf("ReadyC not closed within %s: %s", readyWait, what)
	}
}

// TestReadyC: an Authorizer without a JWKS URL is ready from New; with
// one, ReadyC closes when the first key set is loaded, a Reload to a JWKS
// URL that cannot be fetched keeps it ready (readiness is never
// withdrawn), and a Reload before readiness waits for the new URL's keys,
// not the replaced ones'.
func TestReadyC(t *testing.T) {
	if a := newTestAuthorizer(t, hsConfig(""), nil, nil); !a.Ready() {
		t.Error("static keys: Ready() = false after New")
	}
	if (&Authorizer{}).ReadyC() != nil {
		t.Error("zero Authorizer: ReadyC() is not nil (never ready)")
	}

	keys := jwttest.NewRotation(t, jwttest.LoadKeys(t))
	up := jwttest.NewJWKSServer(t, keys.Only1)
	down := jwttest.NewJWKSServer(t, keys.Only1)
	down.Set("down", nil)
	jwksCfg := func(url string) string { return "os_id: test-os\njwt:\n  jwks_url: " + url + "\n" }

	t.Run("first load, then a reload to a URL that fails", func(t *testing.T) {
		a := newTestAuthorizer(t, jwksCfg(up.URL), nil, nil)
		if a.Ready() {
			t.Fatal("Ready() before Start")
		}
		a.Start(t.Context())
		t.Cleanup(a.Close)
		waitReadyC(t, a, "the first key set")
		hits := down.Hits.Load()
		if _, err := a.Reload(loadFile(t, jwksCfg(down.URL)), ReloadOptions{}); err != nil {
			t.Fatal(err)
		}
		poll.For(t, "the new URL's failed fetch", func() bool { return down.Hits.Load() > hits })
		if !a.Ready() {
			t.Error("Ready() = false after a reload to a URL whose first fetch failed; readiness is never withdrawn")
		}
	})
	t.Run("a reload before readiness", func(t *testing.T) {
		a := newTestAuthorizer(t, jwksCfg(down.URL), nil, nil)
		hits := down.Hits.Load()
		a.Start(t.Context())
		t.Cleanup(a.Close)
		poll.For(t, "the failed first fetch", func() bool { return down.Hits.Load() > hits })
		if a.Ready() {
			t.Fatal("Ready() after a failed first fetch")
		}
		if _, err := a.Reload(loadFile(t, jwksCfg(up.URL)), ReloadOptions{}); err != nil {
			t.Fatal(err)
		}
		waitReadyC(t, a, "the new URL's first key set")
	})
}

// saOpen opens the fixture's store and an authenticator on it, as serve
// does; the test's end closes the store.
func saOpen(t *testing.T, cfg *Config) *serviceaccount.Authenticator {
	t.Helper()
	store, err := serviceaccount.Open(t.Context(), cfg.ServiceAccounts.StoreConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	authn, err := serviceaccount.NewAuthenticator(store, cfg.ServiceAccounts.Options(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return authn
}

// TestReloadServiceAccounts: Reload swaps the service-account
// authenticator with the configuration (docs/CONTRACT.md §8): a new
// database takes over (its tokens accepted, the old one's refused),
// service accounts are disabled and enabled live, and a db_url without an
// authenticator is refused, keeping the running snapshot.
func TestReloadServiceAccounts(t *testing.T) {
	dbA, dbB := newSAFixture(t), newSAFixture(t)
	cfgA, cfgB := loadFile(t, hsConfig(saBlock(dbA.url, ""))), loadFile(t, hsConfig(saBlock(dbB.url, "")))
	off := loadFile(t, hsConfig(""))
	a, err := New(cfgA, Options{Clock: testClock, ServiceAccounts: saOpen(t, cfgA)})
	if err != nil {
		t.Fatal(err)
	}
	authnB := saOpen(t, cfgB)
	status := func(tok string) (int, Reason) {
		d := a.Decide(t.Context(), &Request{Method: "GET", Path: "/config", Headers: bearerH(tok)})
		return d.Status, d.Reason
	}
	for _, step := range []struct {
		name       string
		cfg        *Config
		authn      *serviceaccount.Authenticator
		wantErr    string
		tokA, tokB int
	}{
		{name: "A", cfg: cfgA, authn: a.snap.Load().sa.authn, tokA: 200, tokB: 401},
		{name: "A to B", cfg: cfgB, authn: authnB, tokA: 401, tokB: 200},
		{name: "a db_url without an authenticator", cfg: cfgA, wantErr: "service_accounts.db_url", tokA: 401, tokB: 200},
		{name: "disabled", cfg: off, tokA: 401, tokB: 401},
		{name: "enabled again", cfg: cfgB, authn: authnB, tokA: 401, tokB: 200},
	} {
		_, err := a.Reload(step.cfg, ReloadOptions{ServiceAccounts: step.authn})
		if step.wantErr == "" && err != nil || step.wantErr != "" && (err == nil || !strings.Contains(err.Error(), step.wantErr)) {
			t.Fatalf("%s: Reload = %v, want error %q", step.name, err, step.wantErr)
		}
		if got, r := status(dbA.valid); got != step.tokA {
			t.Errorf("%s: A's token = %d %s, want %d", step.name, got, r, step.tokA)
		}
		if got, r := status(dbB.valid); got != step.tokB {
			t.Errorf("%s: B's token = %d %s, want %d", step.name, got, r, step.tokB)
		}
		if step.name == "disabled" {
			if _, r := status(dbA.valid); r != ReasonServiceAccountsDisabled {
				t.Errorf("disabled: A's token reason %s, want %s", r, ReasonServiceAccountsDisabled)
			}
		}
	}
}

// TestDecideRetriesAfterStoreSwap: a check that loaded its snapshot before
// a Reload replaced the service-account store, and reaches the old store
// once it is closed, is decided on the new snapshot instead of getting a
// 503.
func TestDecideRetriesAfterStoreSwap(t *testing.T) {
	dbA, dbB := newSAFixture(t), newSAFixture(t)
	cfgA, cfgB := loadFile(t, hsConfig(saBlock(dbA.url, ""))), loadFile(t, hsConfig(saBlock(dbB.url, "")))
	storeA, err := serviceaccount.Open(t.Context(), cfgA.ServiceAccounts.StoreConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	authnA, err := serviceaccount.NewAuthenticator(storeA, cfgA.ServiceAccounts.Options(), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfgA, Options{Clock: testClock, ServiceAccounts: authnA})
	if err != nil {
		t.Fatal(err)
	}
	old := a.snap.Load() // a check in flight holds it
	if _, err := a.Reload(cfgB, ReloadOptions{ServiceAccounts: saOpen(t, cfgB)}); err != nil {
		t.Fatal(err)
	}
	storeA.Close()
	req := &Request{Method: "GET", Path: "/config", Headers: bearerH(dbB.valid)}
	if d, _ := old.decide(t.Context(), req, false, a.log); d.Reason != ReasonServiceAccountUnavailable {
		t.Fatalf("the old snapshot alone = %d %s, want %s (its store is closed)", d.Status, d.Reason, ReasonServiceAccountUnavailable)
	}
	if d := a.decideOn(t.Context(), old, req, false); d.Status != http.StatusOK {
		t.Errorf("a check on the old snapshot = %d %s %q, want 200 (decided again on the new one)", d.Status, d.Reason, d.Detail)
	}
}
