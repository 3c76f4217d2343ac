package serviceaccount

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSQLite runs the table, throttling, cache and concurrency tests against a real
// SQLite file with AgentOS's table, opened read-only.
func TestSQLite(t *testing.T) {
	e := sqliteEnv(t)
	t.Run("table", func(t *testing.T) { testTable(t, e) })
	t.Run("throttling", func(t *testing.T) { testThrottling(t, e) })
	t.Run("cache revocation", func(t *testing.T) { testCacheRevocation(t, e) })
	t.Run("concurrent", func(t *testing.T) { testConcurrent(t, e) })
}

// TestSQLiteErrorsAreNotFailures: while the table is gone every lookup is an error (never
// counted); once it is back, the client is not throttled for those errors.
func TestSQLiteErrorsAreNotFailures(t *testing.T) {
	e := sqliteEnv(t)
	valid := newToken(t)
	e.insert(t, Seed{Name: "survivor", Token: valid})
	o := DefaultOptions()
	o.CacheTTL = 0
	o.MaxFailures = 1
	obs := newCounting()
	s := e.open(t, obs)
	a := newAuth(t, s, o, obs)
	if res := a.Authenticate(t.Context(), valid, "192.0.2.3", base); res.Kind != KindOK {
		t.Fatalf("before = %v (%v)", res.Kind, res.Err)
	}
	if err := e.admin.exec(t.Context(), `ALTER TABLE agno_service_accounts RENAME TO parked`); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		res := a.Authenticate(t.Context(), newToken(t), "192.0.2.3", base)
		if res.Kind != KindError || !errors.Is(res.Err, ErrSchema) {
			t.Fatalf("table renamed away: %v (%v), want error/ErrSchema", res.Kind, res.Err)
		}
	}
	if st := s.State(); st.Up {
		t.Fatalf("State = %+v, want down", st)
	}
	if err := e.admin.exec(t.Context(), `ALTER TABLE parked RENAME TO agno_service_accounts`); err != nil {
		t.Fatal(err)
	}
	if res := a.Authenticate(t.Context(), newToken(t), "192.0.2.3", base); res.Kind != KindInvalid {
		t.Fatalf("first failure after the errors = %v, want invalid (errors are not failures)", res.Kind)
	}
	if res := a.Authenticate(t.Context(), valid, "192.0.2.3", base); res.Kind != KindOK {
		t.Fatalf("valid after = %v", res.Kind)
	}
	if st := s.State(); !st.Up {
		t.Fatalf("State = %+v, want up", st)
	}
}

// TestSQLiteMissingFile: the store opens (AgentOS may create the file later), and every
// lookup is ErrUnavailable; the read-only store never creates the file.
func TestSQLiteMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.db")
	s, err := Open(t.Context(), Config{URL: "sqlite:///" + path}, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	a := newAuth(t, s, DefaultOptions(), nil)
	tok := newToken(t)
	res := a.Authenticate(t.Context(), tok, "", base)
	noSecret(t, tok, res)
	if res.Kind != KindError || !errors.Is(res.Err, ErrUnavailable) || !strings.Contains(res.Err.Error(), path) {
		t.Fatalf("lookup in a missing file = %v (%v), want error/ErrUnavailable naming the file", res.Kind, res.Err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the read-only store created %s (stat: %v)", path, err)
	}
}

// TestSQLiteQuotedNames: a table name with a double quote and spaces is one quoted
// identifier, created by Admin and read by the store.
func TestSQLiteQuotedNames(t *testing.T) {
	cfg := Config{URL: "sqlite:///" + filepath.Join(t.TempDir(), "odd.db"), Table: `odd "table"; name`}
	e := newEnv(t, "sqlite-odd", cfg, cfg)
	tok := newToken(t)
	e.insert(t, Seed{Name: "odd", Token: tok, Scopes: []string{"agents:run"}})
	s := e.open(t, nil)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if res := newAuth(t, s, DefaultOptions(), nil).Authenticate(t.Context(), tok, "", base); res.Kind != KindOK || res.Account.Name != "odd" {
		t.Fatalf("Authenticate = %v %q (%v)", res.Kind, res.Account.Name, res.Err)
	}
}

// TestSQLiteRelativeURL: sqlite:///<relative> is relative to the working directory, as
// SQLAlchemy reads it.
func TestSQLiteRelativeURL(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	cfg := Config{URL: "sqlite:///rel/agno.db"}
	if err := os.Mkdir("rel", 0o755); err != nil {
		t.Fatal(err)
	}
	tok := newToken(t)
	if err := Provision(t.Context(), cfg, Seed{Name: "rel", Token: tok}); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "rel", "agno.db")); err != nil {
		t.Fatalf("the database is not under the working directory: %v", err)
	}
	s, err := Open(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if res := newAuth(t, s, DefaultOptions(), nil).Authenticate(t.Context(), tok, "", base); res.Kind != KindOK {
		t.Fatalf("Authenticate = %v (%v)", res.Kind, res.Err)
	}
}

// TestSQLiteBounds: the failure counters keep at most MaxClients clients (the least
// recently failing is forgotten) and the cache at most CacheSize tokens; a cancelled
// request is an error that teaches the database state nothing.
func TestSQLiteBounds(t *testing.T) {
	e := sqliteEnv(t)
	var toks []string
	for _, n := range []string{"b1", "b2", "b3"} {
		tok := newToken(t)
		toks = append(toks, tok)
		e.insert(t, Seed{Name: n, Token: tok})
	}
	o := DefaultOptions()
	o.MaxFailures, o.MaxClients, o.CacheSize = 2, 2, 2
	s := e.open(t, nil)
	a := newAuth(t, s, o, nil)
	fail := func(client string) Kind { return a.Authenticate(t.Context(), newToken(t), client, base).Kind }
	fail("192.0.2.1")
	fail("192.0.2.1")
	if k := fail("192.0.2.1"); k != KindThrottled {
		t.Fatalf("third failure = %v, want throttled", k)
	}
	fail("192.0.2.2")
	fail("192.0.2.3") // evicts 192.0.2.1, the least recently failing
	if n := a.limiter.len(); n != 2 {
		t.Fatalf("limiter holds %d clients, want 2", n)
	}
	if k := fail("192.0.2.1"); k != KindInvalid {
		t.Fatalf("after eviction = %v, want invalid (a fresh count)", k)
	}
	for _, tok := range toks {
		if res := a.Authenticate(t.Context(), tok, "", base); res.Kind != KindOK {
			t.Fatalf("valid = %v (%v)", res.Kind, res.Err)
		}
	}
	if n := a.cache.len(); n != 2 {
		t.Fatalf("cache holds %d tokens, want 2", n)
	}
	if res := a.Authenticate(t.Context(), toks[0], "", base); res.Kind != KindOK {
		t.Fatalf("the evicted (least recently used) token = %v, want ok from the database", res.Kind)
	}
	if res := a.Authenticate(t.Context(), toks[2], "", base); res.Kind != KindCached {
		t.Fatalf("a recent token = %v, want cached", res.Kind)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if res := a.Authenticate(ctx, newToken(t), "", base); res.Kind != KindError {
		t.Fatalf("cancelled request = %v, want error", res.Kind)
	}
	if st := s.State(); !st.Up {
		t.Fatalf("a cancelled request marked the database down: %+v", st)
	}
}
