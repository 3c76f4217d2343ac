package serviceaccount

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentos-authz/agentos-authz/internal/pgtest"
)

// TestPostgres runs the table, throttling, cache and concurrency tests against a real
// PostgreSQL server with AgentOS's table (JSONB scopes, BIGINT times), read through a
// role granted only USAGE on the schema and SELECT on the table.
func TestPostgres(t *testing.T) {
	srv := pgtest.Start(t)
	e := postgresEnv(t, srv)
	t.Run("table", func(t *testing.T) { testTable(t, e) })
	t.Run("throttling", func(t *testing.T) { testThrottling(t, e) })
	t.Run("cache revocation", func(t *testing.T) { testCacheRevocation(t, e) })
	t.Run("concurrent", func(t *testing.T) { testConcurrent(t, e) })

	t.Run("column types", func(t *testing.T) {
		// A table with AgentOS's columns but TEXT scopes is not AgentOS's: Ping says so.
		srv.Exec(t, `CREATE TABLE ai.text_scopes (id varchar, name varchar, token_hash varchar, scopes text, expires_at bigint, revoked_at bigint)`)
		s, err := Open(t.Context(), Config{URL: srv.SuperURL(), Table: "text_scopes"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Ping(t.Context()); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "scopes") {
			t.Fatalf("Ping = %v, want ErrSchema naming scopes", err)
		}
	})

	t.Run("hash never in an error", func(t *testing.T) {
		// token_hash of another type: Postgres quotes the parameter back in its error.
		srv.Exec(t, `CREATE TABLE ai.int_hash (id varchar, name varchar, token_hash bigint, scopes jsonb, expires_at bigint, revoked_at bigint)`)
		s, err := Open(t.Context(), Config{URL: srv.SuperURL(), Table: "int_hash"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		tok := newToken(t)
		res := newAuth(t, s, DefaultOptions(), nil).Authenticate(t.Context(), tok, "", base)
		noSecret(t, tok, res)
		if res.Kind != KindError || !errors.Is(res.Err, ErrSchema) || !strings.Contains(res.Err.Error(), "[token hash]") {
			t.Fatalf("Authenticate = %v (%v), want error/ErrSchema with the hash masked", res.Kind, res.Err)
		}
	})

	t.Run("quoted names", func(t *testing.T) {
		cfg := Config{URL: srv.SuperURL(), Schema: `We"ird schema`, Table: `odd "table"; name`}
		oe := newEnv(t, "postgres-odd", cfg, cfg)
		tok := newToken(t)
		oe.insert(t, Seed{Name: "odd", Token: tok, Scopes: []string{"agents:run"}})
		s := oe.open(t, nil)
		if err := s.Ping(t.Context()); err != nil {
			t.Fatal(err)
		}
		if res := newAuth(t, s, DefaultOptions(), nil).Authenticate(t.Context(), tok, "", base); res.Kind != KindOK || res.Account.Name != "odd" {
			t.Fatalf("Authenticate = %v %q (%v)", res.Kind, res.Account.Name, res.Err)
		}
	})

	t.Run("TLS as the URL says", func(t *testing.T) {
		// The test server has no TLS: sslmode=require must fail, never fall back to plain.
		url := strings.Replace(e.cfg.URL, "sslmode=disable", "sslmode=require", 1)
		s, err := Open(t.Context(), Config{URL: url}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Ping(t.Context()); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Ping with sslmode=require on a server without TLS = %v, want ErrUnavailable", err)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		url := srv.URL("authz_reader", "not-the-password", pgtest.Database)
		s, err := Open(t.Context(), Config{URL: url}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		err = s.Ping(t.Context())
		if !errors.Is(err, ErrUnavailable) || strings.Contains(err.Error(), "not-the-password") {
			t.Fatalf("Ping with a wrong password = %v, want ErrUnavailable without the password", err)
		}
	})
}

// TestPostgresStoppedMidRun: with the server stopped, lookups are errors (fast, bounded by
// the query timeout, never counted as failures) and the state is down; started again, the
// same Store and Authenticator recover without being reopened.
func TestPostgresStoppedMidRun(t *testing.T) {
	srv := pgtest.Start(t)
	e := postgresEnv(t, srv)
	valid := newToken(t)
	e.insert(t, Seed{Name: "steady", Token: valid, Scopes: []string{"agents:run"}})
	obs := newCounting()
	s, err := Open(t.Context(), Config{URL: e.cfg.URL, QueryTimeout: time.Second}, obs)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o := DefaultOptions()
	o.CacheTTL = 0
	o.MaxFailures = 1
	a := newAuth(t, s, o, obs)
	if res := a.Authenticate(t.Context(), valid, "192.0.2.50", base); res.Kind != KindOK {
		t.Fatalf("before = %v (%v)", res.Kind, res.Err)
	}

	srv.Stop(t)
	for i, tok := range []string{valid, newToken(t), newToken(t), valid} {
		start := time.Now()
		res := a.Authenticate(t.Context(), tok, "192.0.2.50", base)
		noSecret(t, tok, res)
		if res.Kind != KindError || !errors.Is(res.Err, ErrUnavailable) {
			t.Fatalf("lookup %d with the server stopped = %v (%v), want error/ErrUnavailable", i, res.Kind, res.Err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("lookup %d took %v with the server stopped", i, d)
		}
	}
	if st := s.State(); st.Up || !errors.Is(st.Err, ErrUnavailable) {
		t.Fatalf("State while stopped = %+v", st)
	}
	if _, _, up := obs.snapshot(); up[len(up)-1] {
		t.Fatal("observer still reports the database up")
	}

	srv.Restart(t)
	eventually(t, 15*time.Second, "the store recovering after the restart", func() bool {
		return a.Authenticate(t.Context(), valid, "192.0.2.50", base).Kind == KindOK
	})
	if st := s.State(); !st.Up {
		t.Fatalf("State after recovery = %+v", st)
	}
	// The errors were not failures: with MaxFailures 1, this first failure is not throttled.
	if res := a.Authenticate(t.Context(), newToken(t), "192.0.2.50", base); res.Kind != KindInvalid {
		t.Fatalf("first failure after the outage = %v, want invalid", res.Kind)
	}
	got, _, _ := obs.snapshot()
	if got[KindError] < 4 {
		t.Fatalf("observed results = %v, want at least 4 errors", got)
	}
}
