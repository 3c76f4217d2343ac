package main

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/authz/serviceaccount"
)

// TestCheckServiceAccount: the offline check reads the configured
// service-account database as serve does (docs/CONTRACT.md §8), and a
// db_url that cannot be read is a configuration error naming the field
// without its password.
func TestCheckServiceAccount(t *testing.T) {
	url := "sqlite:///" + filepath.Join(t.TempDir(), "agno.db")
	tok, err := serviceaccount.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := serviceaccount.Provision(t.Context(), serviceaccount.Config{URL: url},
		serviceaccount.Seed{Name: "ci-bot", Token: tok, Scopes: []string{"agents:read"}}); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, map[string]any{"service_accounts": map[string]any{"db_url": url}})
	for _, c := range []struct {
		path   string
		token  string
		code   int
		stdout string
	}{
		{"/agents", tok, exitOK, "sa:ci-bot"},
		{"/agents/web", tok, exitOK, "service-account"},
		{"/config", tok, exitDenied, "Insufficient permissions"},
		{"/agents", "agno_pat_unknown", exitDenied, "Invalid or expired service account token"},
	} {
		h := newHarness(t)
		code := h.run("check", "--config", cfg, "--token", c.token, "--method", "GET", "--path", c.path)
		if code != c.code || !strings.Contains(h.stdout.String(), c.stdout) {
			t.Errorf("check GET %s = exit %d\n%s%s\nwant exit %d and %q", c.path, code, h.stdout, h.stderr, c.code, c.stdout)
		}
		if strings.Contains(h.stdout.String()+h.stderr.String(), serviceaccount.HashToken(tok)) {
			t.Error("the output holds the token's hash")
		}
	}
	h := newHarness(t)
	bad := writeConfig(t, map[string]any{"service_accounts": map[string]any{"db_url": "mysql://u:hunter2-pw@h/db"}})
	if code := h.run("check", "--config", bad, "--token", tok, "--path", "/agents"); code != exitUsage ||
		!strings.Contains(h.stderr.String(), "service_accounts.db_url") || strings.Contains(h.stderr.String(), "hunter2-pw") {
		t.Errorf("check with a bad db_url = exit %d, stderr %q; want exit 2 naming the field, never the password", code, h.stderr)
	}
}

// recordingReload is an authorizer's Reload that keeps the authenticator
// it was given and answers err.
type recordingReload struct {
	got *serviceaccount.Authenticator
	err error
}

func (r *recordingReload) Reload(_ *authz.Config, ro authz.ReloadOptions) (bool, error) {
	r.got = ro.ServiceAccounts
	return false, r.err
}

// TestReloadServiceAccountStores: a reload to another database hands the
// authorizer a store of its own; when the authorizer refuses the
// configuration, that store is closed and the running one stays open;
// when it accepts it, the replaced store is closed after the swap. A
// change of the options alone keeps the store.
func TestReloadServiceAccountStores(t *testing.T) {
	urlA, _ := saDatabase(t, "a")
	urlB, _ := saDatabase(t, "b")
	load := func(url, extra string) *authz.Config {
		t.Helper()
		cfg, err := authz.Load([]byte("security_key: "+strings.Repeat("s", 32)+"\nservice_accounts:\n  db_url: \""+url+"\"\n"+extra), nil, authz.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	_, metrics, err := newMetrics()
	if err != nil {
		t.Fatal(err)
	}
	sa := newLiveServiceAccounts(metrics, zaptest.NewLogger(t), &readyConditions{})
	defer sa.close()
	if err := sa.open(t.Context(), load(urlA, "")); err != nil {
		t.Fatal(err)
	}
	running := sa.authn()
	pingable := func(a *serviceaccount.Authenticator) bool { return a.Store().Ping(t.Context()) == nil }

	refuse := &recordingReload{err: errors.New("refused")}
	l := &liveReload{sa: sa, target: refuse}
	if err := l.apply(t.Context(), &config{Config: load(urlB, "")}); err == nil {
		t.Fatal("apply with a refusing authorizer succeeded")
	}
	if refuse.got == nil || refuse.got.Store() == running.Store() {
		t.Fatal("the authorizer was not handed a new store for database B")
	}
	if pingable(refuse.got) || sa.authn() != running || !pingable(running) {
		t.Error("a refused reload: want B's store closed and A's running and open")
	}

	accept := &recordingReload{}
	l.target = accept
	if err := l.apply(t.Context(), &config{Config: load(urlA, "  cache_ttl: 5s\n")}); err != nil {
		t.Fatal(err)
	}
	if accept.got == running || accept.got.Store() != running.Store() || !pingable(accept.got) {
		t.Error("an options change: want a new authenticator on the running, open store")
	}
	if err := l.apply(t.Context(), &config{Config: load(urlB, "")}); err != nil {
		t.Fatal(err)
	}
	if sa.authn() != accept.got || !pingable(accept.got) || pingable(running) {
		t.Error("an accepted reload to B: want B's store current and open, A's closed")
	}
}
