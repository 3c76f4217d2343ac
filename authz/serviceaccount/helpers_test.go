package serviceaccount

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentos-authz/agentos-authz/internal/pgtest"
	"github.com/agentos-authz/agentos-authz/internal/poll"
)

// base is the tests' "now": every row's times are relative to it and it is what
// Authenticate is given, so expiry is decided by the test, not the wall clock.
var base = time.Unix(1_800_000_000, 0)

// env is one real database with AgentOS's table, a read-write Admin on it, and the
// configuration a read-only Store uses.
type env struct {
	name  string
	cfg   Config // the store's: a read-only role for Postgres
	super Config // a role that may write (the store must still refuse)
	admin *Admin
}

func sqliteEnv(t *testing.T) env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agno.db")
	cfg := Config{URL: "sqlite:///" + path} // path is absolute: sqlite:////tmp/…
	return newEnv(t, "sqlite", cfg, cfg)
}

// postgresEnv creates AgentOS's table in srv and a role that can only read it, granted
// exactly as the README tells operators to.
func postgresEnv(t *testing.T, srv *pgtest.Server) env {
	t.Helper()
	super := Config{URL: srv.SuperURL()}
	e := newEnv(t, "postgres", super, super)
	srv.Exec(t,
		`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authz_reader') THEN
		   CREATE ROLE authz_reader LOGIN PASSWORD 'reader-pw'; END IF; END $$`,
		`GRANT USAGE ON SCHEMA ai TO authz_reader`,
		`GRANT SELECT ON ai.agno_service_accounts TO authz_reader`)
	e.cfg = Config{URL: srv.URL("authz_reader", "reader-pw", pgtest.Database)}
	return e
}

func newEnv(t *testing.T, name string, cfg, super Config) env {
	t.Helper()
	admin, err := OpenAdmin(t.Context(), super)
	if err != nil {
		t.Fatalf("OpenAdmin(%s): %v", name, err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	if err := admin.CreateTable(t.Context()); err != nil {
		t.Fatalf("CreateTable(%s): %v", name, err)
	}
	return env{name: name, cfg: cfg, super: super, admin: admin}
}

func (e env) open(t *testing.T, obs Observer) *Store {
	t.Helper()
	s, err := Open(t.Context(), e.cfg, obs)
	if err != nil {
		t.Fatalf("Open(%s): %v", e.name, err)
	}
	t.Cleanup(s.Close)
	return s
}

func (e env) insert(t *testing.T, seeds ...Seed) {
	t.Helper()
	if err := e.admin.Insert(t.Context(), seeds...); err != nil {
		t.Fatalf("Insert(%s): %v", e.name, err)
	}
}

func newToken(t *testing.T) string {
	t.Helper()
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func newAuth(t *testing.T, s *Store, o Options, obs Observer) *Authenticator {
	t.Helper()
	a, err := NewAuthenticator(s, o, obs)
	if err != nil {
		t.Fatalf("NewAuthenticator: %v", err)
	}
	return a
}

// noSecret fails when anything the package handed back holds the token or its hash.
func noSecret(t *testing.T, token string, v any) {
	t.Helper()
	s := fmt.Sprintf("%+v %#v", v, v)
	if r, ok := v.(Result); ok && r.Err != nil {
		s += r.Err.Error()
	}
	if err, ok := v.(error); ok && err != nil {
		s += err.Error()
	}
	if strings.Contains(s, token) || strings.Contains(s, HashToken(token)) {
		t.Fatalf("a token or its hash leaked: %s", s)
	}
}

// countingObserver records what an Authenticator reports.
type countingObserver struct {
	mu      sync.Mutex
	results map[Kind]int
	queries int
	up      []bool
}

var _ Observer = (*countingObserver)(nil)

func newCounting() *countingObserver { return &countingObserver{results: map[Kind]int{}} }

func (c *countingObserver) ObserveQuery(_ time.Duration, up bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queries++
	c.up = append(c.up, up)
}

func (c *countingObserver) ObserveResult(k Kind) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.results[k]++
}

func (c *countingObserver) snapshot() (map[Kind]int, int, []bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[Kind]int{}
	for k, v := range c.results {
		m[k] = v
	}
	return m, c.queries, append([]bool(nil), c.up...)
}

// eventually polls cond (internal/poll) until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := poll.Until(t.Context(), within, func() (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("%s: not within %v: %v", what, within, err)
	}
}
