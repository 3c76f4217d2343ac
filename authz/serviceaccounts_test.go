package authz

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentos-authz/agentos-authz/authz/serviceaccount"
)

// saFixture is AgentOS's service-account table in a real SQLite file, with
// the accounts of the decision tests.
type saFixture struct {
	url     string
	path    string
	valid   string // sa:ci-bot, agents:run config:read
	lister  string // per-resource read scopes
	padded  string // scopes with entries that must be left out
	revoked string
	expired string
}

func newSAFixture(t testing.TB) saFixture {
	t.Helper()
	f := saFixture{path: filepath.Join(t.TempDir(), "agno.db")}
	f.url = "sqlite:///" + f.path
	tok := func() string {
		s, err := serviceaccount.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	f.valid, f.lister, f.padded, f.revoked, f.expired = tok(), tok(), tok(), tok(), tok()
	err := serviceaccount.Provision(t.Context(), serviceaccount.Config{URL: f.url},
		serviceaccount.Seed{Name: "ci-bot", Token: f.valid, Scopes: []string{"agents:run", "config:read"}},
		serviceaccount.Seed{Name: "lister", Token: f.lister, Scopes: []string{"agents:web:read", "agents:a1:read"}},
		serviceaccount.Seed{Name: "padded", Token: f.padded, Scopes: []string{" config:read", "", "config:read", "agents:\x01run", "agents read"}},
		serviceaccount.Seed{Name: "revoked", Token: f.revoked, Scopes: []string{"config:read"}, RevokedAt: testNow.Add(-time.Hour)},
		serviceaccount.Seed{Name: "expired", Token: f.expired, Scopes: []string{"config:read"}, ExpiresAt: testNow.Add(-time.Minute)},
	)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// newSAAuthorizer builds an Authorizer on yamlText with the fixture's
// database opened as serve opens it.
func newSAAuthorizer(t testing.TB, yamlText string) *Authorizer {
	t.Helper()
	cfg, err := Load([]byte(yamlText), nil, LoadOptions{})
	if err != nil {
		t.Fatalf("Load(%q) = %v", yamlText, err)
	}
	var authn *serviceaccount.Authenticator
	if cfg.ServiceAccounts.Enabled() {
		store, err := serviceaccount.Open(t.Context(), cfg.ServiceAccounts.StoreConfig(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(store.Close)
		if authn, err = serviceaccount.NewAuthenticator(store, cfg.ServiceAccounts.Options(), nil); err != nil {
			t.Fatal(err)
		}
	}
	a, err := New(cfg, Options{Clock: testClock, ServiceAccounts: authn})
	if err != nil {
		t.Fatalf("New(%q) = %v", yamlText, err)
	}
	return a
}

func saBlock(url, extra string) string {
	return "service_accounts:\n  db_url: \"" + url + "\"\n" + extra
}

func upstreamOf(d Decision) map[string]string {
	m := map[string]string{}
	for _, h := range d.Upstream {
		m[h.Name] = h.Value
	}
	return m
}

// TestDecideServiceAccounts: the decision mapping of docs/CONTRACT.md §5's
// service-account rows and §8, in every credential mode.
func TestDecideServiceAccounts(t *testing.T) {
	f := newSAFixture(t)
	jwtAndSA := hsConfig(saBlock(f.url, ""))
	type tc struct {
		name     string
		cfg      string
		method   string
		path     string
		headers  map[string]string
		client   string
		status   int
		detail   string
		upstream map[string]string // wanted upstream headers ("" = absent)
	}
	saHeaders := func(user, scopes string) map[string]string {
		return map[string]string{headerAuth: authServiceAccount, HeaderUserID: user, headerScopes: scopes, headerSessionID: ""}
	}
	cases := []tc{
		{name: "valid", cfg: jwtAndSA, path: "/config", headers: bearerH(f.valid), status: 200,
			upstream: saHeaders("sa:ci-bot", "agents:run config:read")},
		{name: "bare token", cfg: jwtAndSA, path: "/config", headers: map[string]string{"authorization": f.valid}, status: 200,
			upstream: saHeaders("sa:ci-bot", "agents:run config:read")},
		{name: "insufficient scopes", cfg: jwtAndSA, method: "DELETE", path: "/agents/web", headers: bearerH(f.valid),
			status: 403, detail: "Insufficient permissions"},
		{name: "listing filtered", cfg: jwtAndSA, path: "/agents", headers: bearerH(f.lister), status: 200,
			upstream: map[string]string{HeaderUserID: "sa:lister", headerAccessibleIDs: `["web","a1"]`}},
		{name: "listing none", cfg: jwtAndSA, path: "/workflows", headers: bearerH(f.lister), status: 403, detail: "Insufficient permissions"},
		{name: "invalid scope entries left out", cfg: jwtAndSA, path: "/config", headers: bearerH(f.padded), status: 200,
			upstream: saHeaders("sa:padded", "config:read")},
		{name: "revoked", cfg: jwtAndSA, path: "/config", headers: bearerH(f.revoked), status: 401, detail: detailSAInvalid},
		{name: "expired", cfg: jwtAndSA, path: "/config", headers: bearerH(f.expired), status: 401, detail: detailSAInvalid},
		{name: "unknown", cfg: jwtAndSA, path: "/config", headers: bearerH("agno_pat_0000000000000000000000000000000000000000000"),
			status: 401, detail: detailSAInvalid},
		{name: "JWT still verified", cfg: jwtAndSA, path: "/config", headers: bearerH(mintHS(t, user("config:read"))), status: 200,
			upstream: map[string]string{headerAuth: authJWT, HeaderUserID: "u1"}},
		{name: "excluded route no identity", cfg: jwtAndSA, path: "/health", headers: bearerH(f.valid), status: 200,
			upstream: map[string]string{headerAuth: authNone, HeaderUserID: ""}},
		{name: "not enabled", cfg: hsConfig(""), path: "/config", headers: bearerH(f.valid), status: 401, detail: detailSADisabled},
		{name: "not enabled, security key mode", cfg: "security_key: sk-0123456789abcdef\n", path: "/config", headers: bearerH(f.valid),
			status: 401, detail: detailSADisabled},
		{name: "scopes enforced with authorization false", cfg: hsConfig("authorization: false\n" + saBlock(f.url, "")),
			method: "DELETE", path: "/agents/web", headers: bearerH(f.valid), status: 403, detail: "Insufficient permissions"},
		{name: "scopes enforced with validate false", cfg: "os_id: test-os\njwt:\n  validate: false\n" + saBlock(f.url, ""),
			method: "DELETE", path: "/agents/web", headers: bearerH(f.valid), status: 403, detail: "Insufficient permissions"},
		{name: "security key mode: the key", cfg: "security_key: sk-0123456789abcdef\n" + saBlock(f.url, ""), path: "/config",
			headers: bearerH("sk-0123456789abcdef"), status: 200, upstream: map[string]string{headerAuth: AuthSecurityKey}},
		{name: "security key mode: a service account", cfg: "security_key: sk-0123456789abcdef\n" + saBlock(f.url, ""), path: "/config",
			headers: bearerH(f.valid), status: 200, upstream: saHeaders("sa:ci-bot", "agents:run config:read")},
		{name: "security key mode: scopes enforced", cfg: "security_key: sk-0123456789abcdef\n" + saBlock(f.url, ""),
			method: "DELETE", path: "/agents/web", headers: bearerH(f.valid), status: 403, detail: "Insufficient permissions"},
		{name: "migration mode: a service account", cfg: hsConfig("security_key: sk-0123456789abcdef\nsecurity_key_migration: true\n" + saBlock(f.url, "")),
			path: "/config", headers: bearerH(f.valid), status: 200, upstream: saHeaders("sa:ci-bot", "agents:run config:read")},
		{name: "only source: no credential", cfg: saBlock(f.url, ""), path: "/config", status: 401, detail: detailKeyRequired},
		{name: "only source: a JWT is no service account", cfg: saBlock(f.url, ""), path: "/config",
			headers: bearerH(mintHS(t, user("config:read"))), status: 401, detail: detailSAInvalid},
		{name: "only source: valid", cfg: saBlock(f.url, ""), path: "/config", headers: bearerH(f.valid), status: 200,
			upstream: saHeaders("sa:ci-bot", "agents:run config:read")},
		{name: "only source: excluded route", cfg: saBlock(f.url, ""), path: "/health", status: 200,
			upstream: map[string]string{headerAuth: authNone}},
		{name: "database missing: 503", cfg: hsConfig(saBlock("sqlite:///"+filepath.Join(t.TempDir(), "none.db"), "")),
			path: "/config", headers: bearerH(f.valid), status: 503, detail: DetailUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newSAAuthorizer(t, c.cfg)
			method := c.method
			if method == "" {
				method = "GET"
			}
			h := with(c.headers, "x-agentos-user-id", "spoofed")
			d := a.Decide(context.Background(), &Request{Method: method, Path: c.path, Headers: h, ClientAddr: c.client})
			if d.Status != c.status || (c.detail != "" && d.Detail != c.detail) {
				t.Fatalf("Decide(%s %s) = %d %q, want %d %q", method, c.path, d.Status, d.Detail, c.status, c.detail)
			}
			got := upstreamOf(d)
			for k, v := range c.upstream {
				if g, ok := got[k]; v == "" && ok || v != "" && g != v {
					t.Errorf("upstream %s = %q (present %v), want %q", k, g, ok, v)
				}
			}
		})
	}
}

// TestDecideServiceAccountThrottle: past max_failures a failing token is 429
// for that client only; a valid token is never throttled.
func TestDecideServiceAccountThrottle(t *testing.T) {
	f := newSAFixture(t)
	a := newSAAuthorizer(t, hsConfig(saBlock(f.url, "  max_failures: 2\n  failure_window: 1h\n")))
	try := func(tok, client string) Decision {
		return a.Decide(context.Background(), &Request{Method: "GET", Path: "/config", Headers: bearerH(tok), ClientAddr: client})
	}
	for i, want := range []int{401, 401, 429, 429} {
		if d := try(f.revoked, "10.0.0.7"); d.Status != want {
			t.Fatalf("failure %d from 10.0.0.7: %d %q, want %d", i+1, d.Status, d.Detail, want)
		} else if want == 429 && d.Detail != detailSAThrottled {
			t.Fatalf("429 detail %q", d.Detail)
		}
	}
	if d := try(f.valid, "10.0.0.7"); d.Status != 200 {
		t.Errorf("a valid token from a throttled client: %d %q, want 200", d.Status, d.Detail)
	}
	if d := try(f.revoked, "10.0.0.8:5555"); d.Status != 401 {
		t.Errorf("another client: %d, want 401", d.Status)
	}
}

// TestServiceAccountsConfig: the section's fields, defaults, environment
// variable and errors (docs/CONTRACT.md §4).
func TestServiceAccountsConfig(t *testing.T) {
	cfg, err := Load([]byte("security_key: sk-0123456789abcdef\n"), env(map[string]string{envServiceAccountsDBURL: "sqlite:///x.db"}), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ServiceAccounts.DBURL != "sqlite:///x.db" {
		t.Errorf("SERVICE_ACCOUNTS_DB_URL not read: %q", cfg.ServiceAccounts.DBURL)
	}
	if o := cfg.ServiceAccounts.Options(); o != serviceaccount.DefaultOptions() {
		t.Errorf("defaults: %+v", o)
	}
	cfg, err = Load([]byte(saBlock("postgresql://u:pw@h/db", "  cache_ttl: 0s\n  max_failures: 0\n  failure_window: 5m\n")), nil, LoadOptions{})
	if err != nil {
		t.Fatalf("db_url alone is a credential source: %v", err)
	}
	if o := cfg.ServiceAccounts.Options(); o.CacheTTL != 0 || o.MaxFailures != 0 || o.FailureWindow != 5*time.Minute {
		t.Errorf("options: %+v", o)
	}
	if w := cfg.ServiceAccounts.Where(); strings.Contains(w, "pw") || !strings.Contains(w, "ai.agno_service_accounts") {
		t.Errorf("Where() = %q: want the table, never the password", w)
	}
	for _, c := range []struct{ yaml, want string }{
		{saBlock("mysql://u:s3cret-pw@h/db", ""), "service_accounts.db_url"},
		{saBlock("postgresql://u:s3cret-pw@h/db", "  cache_ttl: -1s\n"), "service_accounts.cache_ttl"},
		{saBlock("postgresql://u:s3cret-pw@h/db", "  max_failures: -1\n"), "service_accounts.max_failures"},
		{saBlock("postgresql://u:s3cret-pw@h/db", "  failure_window: 0s\n"), "service_accounts.failure_window"},
		{saBlock("postgresql://u:s3cret-pw@h/db", "  table: \" padded\"\n"), "service_accounts.table"},
		{saBlock("postgresql://u:s3cret-pw@h/db", "  db_schema: \""+strings.Repeat("s", 64)+"\"\n"), "service_accounts.db_schema"},
		{saBlock("postgresql://u:s3cret-pw@h/db", "  colour: x\n"), "service_accounts.colour"},
		{"os_id: x\n", "service_accounts.db_url (SERVICE_ACCOUNTS_DB_URL)"},
	} {
		_, err := Load([]byte(c.yaml), nil, LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Load(%q) = %v, want an error naming %s", c.yaml, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("Load(%q): the error holds the password: %v", c.yaml, err)
		}
	}
	// New needs the authenticator the caller opened.
	cfg, err = Load([]byte(saBlock("sqlite:///x.db", "")), nil, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, Options{}); err == nil || !strings.Contains(err.Error(), "service_accounts.db_url") {
		t.Errorf("New without an authenticator = %v, want an error naming service_accounts.db_url", err)
	}
}
