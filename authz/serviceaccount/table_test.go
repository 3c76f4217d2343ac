package serviceaccount

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// rawInsert writes a row with a scopes value Seed cannot express.
func (e env) rawInsert(t *testing.T, name, token, scopesJSON string) {
	t.Helper()
	q := `INSERT INTO ` + e.admin.ident + ` (id, name, token_hash, token_prefix, scopes, created_at) VALUES `
	if e.admin.dialect == DialectPostgres {
		q += `($1, $2, $3, $4, $5::jsonb, $6)`
	} else {
		q += `(?, ?, ?, ?, ?, ?)`
	}
	if err := e.admin.exec(t.Context(), q, name+"-id", name, HashToken(token), token[:16], scopesJSON, base.Unix()); err != nil {
		t.Fatalf("raw insert %s: %v", name, err)
	}
}

// testTable checks AgentOS's verification rules on one database: each row kind gives the
// result AgentOS's ServiceAccountVerifier would, with the cache off so every call reads.
func testTable(t *testing.T, e env) {
	tok := map[string]string{}
	seed := func(s Seed) Seed {
		s.Token = newToken(t)
		tok[s.Name] = s.Token
		return s
	}
	e.insert(t,
		seed(Seed{Name: "valid", Scopes: []string{"agents:run", "teams:*:read", "config:read"}}),
		seed(Seed{Name: "expires-later", Scopes: []string{"agents:run"}, ExpiresAt: base.Add(time.Second)}),
		seed(Seed{Name: "expires-now", ExpiresAt: base}),
		seed(Seed{Name: "expired", ExpiresAt: base.Add(-time.Hour)}),
		seed(Seed{Name: "revoked", RevokedAt: base.Add(-time.Minute)}),
		seed(Seed{Name: "revoked-in-future", RevokedAt: base.Add(time.Hour)}),
		seed(Seed{Name: "revoked-and-expired", RevokedAt: base.Add(-time.Minute), ExpiresAt: base.Add(-time.Hour)}),
		seed(Seed{Name: "no-scopes"}),
	)
	tok["mixed-scopes"] = newToken(t)
	e.rawInsert(t, "mixed-scopes", tok["mixed-scopes"], `["agents:run", 7, null, {"a": 1}, "", " padded", "config:read"]`)
	tok["object-scopes"] = newToken(t)
	e.rawInsert(t, "object-scopes", tok["object-scopes"], `{"agents:run": true}`)
	tok["unknown"] = newToken(t) // never inserted
	tok["not-a-pat"] = "eyJhbGciOiJIUzI1NiJ9.e30.sig"

	obs := newCounting()
	store := e.open(t, obs)
	if err := store.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if st := store.State(); !st.Up || st.Err != nil || st.Checked.IsZero() {
		t.Fatalf("State after Ping = %+v, want up", st)
	}
	o := DefaultOptions()
	o.CacheTTL = 0
	o.MaxFailures = 0
	a := newAuth(t, store, o, obs)

	tests := []struct {
		name       string
		wantKind   Kind
		wantReason Reason
		wantScopes []string
		wantExpiry time.Time
	}{
		{name: "valid", wantKind: KindOK, wantScopes: []string{"agents:run", "teams:*:read", "config:read"}},
		{name: "expires-later", wantKind: KindOK, wantScopes: []string{"agents:run"}, wantExpiry: base.Add(time.Second)},
		{name: "expires-now", wantKind: KindInvalid, wantReason: ReasonExpired},
		{name: "expired", wantKind: KindInvalid, wantReason: ReasonExpired},
		{name: "revoked", wantKind: KindInvalid, wantReason: ReasonRevoked},
		{name: "revoked-in-future", wantKind: KindInvalid, wantReason: ReasonRevoked},
		{name: "revoked-and-expired", wantKind: KindInvalid, wantReason: ReasonRevoked},
		{name: "no-scopes", wantKind: KindOK, wantScopes: []string{}},
		{name: "mixed-scopes", wantKind: KindOK, wantScopes: []string{"agents:run", "", " padded", "config:read"}},
		{name: "object-scopes", wantKind: KindOK, wantScopes: nil},
		{name: "unknown", wantKind: KindInvalid, wantReason: ReasonUnknown},
		{name: "not-a-pat", wantKind: KindInvalid, wantReason: ReasonUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := a.Authenticate(t.Context(), tok[tc.name], "192.0.2.1", base)
			noSecret(t, tok[tc.name], res)
			if res.Kind != tc.wantKind || res.Reason != tc.wantReason {
				t.Fatalf("Authenticate(%s) = %v/%q (err %v), want %v/%q", tc.name, res.Kind, res.Reason, res.Err, tc.wantKind, tc.wantReason)
			}
			if !res.Authenticated() {
				if res.Account.Name != "" {
					t.Fatalf("Authenticate(%s) failed but names account %q", tc.name, res.Account.Name)
				}
				return
			}
			if res.Account.Name != tc.name || res.Account.Principal() != "sa:"+tc.name {
				t.Errorf("Authenticate(%s).Account = %q (principal %q)", tc.name, res.Account.Name, res.Account.Principal())
			}
			if !slices.Equal(res.Account.Scopes, tc.wantScopes) {
				t.Errorf("Authenticate(%s).Scopes = %q, want %q", tc.name, res.Account.Scopes, tc.wantScopes)
			}
			if !res.Account.Expires.Equal(tc.wantExpiry) {
				t.Errorf("Authenticate(%s).Expires = %v, want %v", tc.name, res.Account.Expires, tc.wantExpiry)
			}
		})
	}

	t.Run("expiry boundary one second later", func(t *testing.T) {
		// expires_at = base+1: valid at base, expired at base+1 (AgentOS: expires_at <= now).
		if res := a.Authenticate(t.Context(), tok["expires-later"], "192.0.2.1", base.Add(999*time.Millisecond)); res.Kind != KindOK {
			t.Fatalf("at base+999ms = %v, want ok", res.Kind)
		}
		if res := a.Authenticate(t.Context(), tok["expires-later"], "192.0.2.1", base.Add(time.Second)); res.Kind != KindInvalid || res.Reason != ReasonExpired {
			t.Fatalf("at base+1s = %v/%v, want invalid/expired", res.Kind, res.Reason)
		}
	})

	t.Run("wrong table", func(t *testing.T) {
		cfg := e.cfg
		cfg.Table = "agno_service_accounts_missing"
		testMissing(t, cfg, "agno_service_accounts_missing", tok["valid"])
	})
	if e.admin.dialect == DialectPostgres {
		t.Run("wrong schema", func(t *testing.T) {
			cfg := e.cfg
			cfg.Schema = "agno"
			testMissing(t, cfg, "agno.agno_service_accounts", tok["valid"])
		})
	}
	t.Run("table name is never SQL", func(t *testing.T) {
		cfg := e.cfg
		cfg.Table = `agno_service_accounts" WHERE '1'='1' --`
		testMissing(t, cfg, `agno_service_accounts" WHERE`, tok["valid"])
	})

	t.Run("read-only", func(t *testing.T) {
		// Even through a role that may write, the store's own connections refuse to.
		s, err := Open(t.Context(), e.super, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		q := `UPDATE ` + e.admin.ident + ` SET revoked_at = 1`
		if err := writeThrough(t, s, q); err == nil {
			t.Fatalf("%s through the store: no error", q)
		}
		if err := writeThrough(t, s, `CREATE TABLE planted (x int)`); err == nil {
			t.Fatal("CREATE TABLE through the store: no error")
		}
		if res := a.Authenticate(t.Context(), tok["valid"], "192.0.2.1", base); res.Kind != KindOK {
			t.Fatalf("after the refused writes, valid = %v, want ok", res.Kind)
		}
	})
}

// writeThrough runs a write statement on the store's own connection.
func writeThrough(t *testing.T, s *Store, q string) error {
	t.Helper()
	switch be := s.be.(type) {
	case *postgres:
		_, err := be.pool.Exec(t.Context(), q)
		var pgErr *pgconn.PgError
		if err != nil && (!errors.As(err, &pgErr) || pgErr.Code != "25006") {
			t.Errorf("write refused with %v, want SQLSTATE 25006 (read_only_sql_transaction)", err)
		}
		return err
	case *sqliteDB:
		_, err := be.db.ExecContext(t.Context(), q)
		return err
	}
	t.Fatalf("unknown backend %T", s.be)
	return nil
}

// testMissing: a store on a table that does not exist opens (the service must start with
// the database in any state), and then Ping and every lookup report ErrSchema naming the
// table; the lookups are errors, not failures.
func testMissing(t *testing.T, cfg Config, wantInMsg, token string) {
	t.Helper()
	obs := newCounting()
	s, err := Open(t.Context(), cfg, obs)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	err = s.Ping(t.Context())
	if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), wantInMsg) {
		t.Fatalf("Ping = %v, want ErrSchema naming %q", err, wantInMsg)
	}
	if st := s.State(); st.Up || !errors.Is(st.Err, ErrSchema) {
		t.Fatalf("State = %+v, want down with ErrSchema", st)
	}
	o := DefaultOptions()
	o.MaxFailures = 1
	a := newAuth(t, s, o, obs)
	for i := 0; i < 3; i++ {
		res := a.Authenticate(t.Context(), token, "192.0.2.9", base)
		noSecret(t, token, res)
		if res.Kind != KindError || !errors.Is(res.Err, ErrSchema) {
			t.Fatalf("Authenticate on a missing table = %v (%v), want error/ErrSchema", res.Kind, res.Err)
		}
	}
	if n := a.limiter.len(); n != 0 {
		t.Fatalf("database errors were counted as failures (%d clients)", n)
	}
	if _, _, up := obs.snapshot(); len(up) != 4 || slices.Contains(up, true) {
		t.Fatalf("observer up = %v, want four downs", up)
	}
}
