package test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
	"github.com/agentos-authz/agentos-authz/internal/pgtest"
	"github.com/agentos-authz/agentos-authz/internal/poll"
	"github.com/agentos-authz/agentos-authz/test/harness"
)

// Service accounts against the real binary and real databases
// (docs/CONTRACT.md §8): AgentOS's table in a PostgreSQL server and in a
// SQLite file, written by the test as AgentOS writes it, read by the
// service over gRPC and the HTTP ext_authz mode.

// saCacheTTL and saWindow are short so the revocation and the throttling
// recovery can be watched happening.
const (
	saCacheTTL = 2 * time.Second
	saWindow   = 3 * time.Second
	saMaxFails = 3
)

// saAccounts are the fixture rows; tokens are fixed so failures are easy to
// read (they are test data, never real credentials).
var (
	saValid   = "agno_pat_bbValidToken0000000000000000000000000000001"
	saRevoke  = "agno_pat_bbRevokeLater00000000000000000000000000002"
	saRevoked = "agno_pat_bbRevoked000000000000000000000000000000003"
	saExpired = "agno_pat_bbExpired000000000000000000000000000000004"
	saUnknown = "agno_pat_bbUnknown000000000000000000000000000000005"
)

func saFixtures() []conformance.ServiceAccount {
	ago, soon := "-1h", "+1h"
	return []conformance.ServiceAccount{
		{Name: "ci-bot", Token: saValid, Scopes: []string{"agents:run", "config:read"}, ExpiresAt: &soon},
		{Name: "revoke-me", Token: saRevoke, Scopes: []string{"config:read"}},
		{Name: "revoked-bot", Token: saRevoked, Scopes: []string{"config:read"}, RevokedAt: &ago},
		{Name: "expired-bot", Token: saExpired, Scopes: []string{"config:read"}, ExpiresAt: &ago},
	}
}

// saDB is one database holding AgentOS's table.
type saDB struct {
	url    string                          // db_url the service reads with
	revoke func(t *testing.T, name string) // sets revoked_at of the account
	stop   func(t *testing.T)              // nil when the database cannot stop
	start  func(t *testing.T)              // starts it again
}

// postgresAccounts starts a PostgreSQL server, creates AgentOS's table with
// AgentOS's column types (agno/db/postgres/schemas.py: JSONB scopes, BIGINT
// epoch seconds) and the read-only role the README tells operators to
// create, and returns the URL of that role.
func postgresAccounts(t *testing.T) saDB {
	pg := pgtest.Start(t)
	pg.Exec(t,
		`CREATE SCHEMA ai`,
		`CREATE TABLE ai.agno_service_accounts (
			id VARCHAR NOT NULL PRIMARY KEY,
			name VARCHAR NOT NULL,
			user_id VARCHAR,
			token_hash VARCHAR NOT NULL UNIQUE,
			token_prefix VARCHAR NOT NULL,
			scopes JSONB NOT NULL,
			created_at BIGINT NOT NULL,
			expires_at BIGINT,
			last_used_at BIGINT,
			revoked_at BIGINT,
			created_by VARCHAR)`,
		// README "Service accounts": the gateway's read-only role.
		`CREATE ROLE agentos_authz LOGIN PASSWORD 'gw-read-only-pw'`,
		`GRANT USAGE ON SCHEMA ai TO agentos_authz`,
		`GRANT SELECT ON ai.agno_service_accounts TO agentos_authz`,
	)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, pg.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	now := time.Now()
	for _, a := range saFixtures() {
		row, err := conformance.AccountRow(a, now)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO ai.agno_service_accounts
			(id, name, user_id, token_hash, token_prefix, scopes, created_at, expires_at, last_used_at, revoked_at, created_by)
			VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11)`, row...); err != nil {
			t.Fatal(err)
		}
	}
	return saDB{
		url: pg.URL("agentos_authz", "gw-read-only-pw", pgtest.Database),
		revoke: func(t *testing.T, name string) {
			pg.Exec(t, `UPDATE ai.agno_service_accounts SET revoked_at = extract(epoch from now())::bigint WHERE name = '`+name+`'`)
		},
		stop:  func(t *testing.T) { pg.Stop(t) },
		start: func(t *testing.T) { pg.Restart(t) },
	}
}

// sqliteAccounts writes AgentOS's table into a SQLite file.
func sqliteAccounts(t *testing.T) saDB {
	path := filepath.Join(t.TempDir(), "agno.db")
	u, err := conformance.WriteSQLiteAccounts(t.Context(), path, saFixtures(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return saDB{
		url: u,
		revoke: func(t *testing.T, name string) {
			db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: path}).String())
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.ExecContext(t.Context(), `UPDATE agno_service_accounts SET revoked_at = ? WHERE name = ?`, time.Now().Unix(), name); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// startSAServer serves an HS256 JWT source beside service accounts in db,
// with the HTTP ext_authz listener on.
func startSAServer(t *testing.T, db saDB) *harness.Server {
	t.Helper()
	return startSAServerWith(t, db, nil)
}

// startSAServerWith is startSAServer with more service_accounts settings.
func startSAServerWith(t *testing.T, db saDB, extra map[string]any) *harness.Server {
	t.Helper()
	sa := map[string]any{
		"db_url": db.url, "cache_ttl": saCacheTTL.String(),
		"max_failures": saMaxFails, "failure_window": saWindow.String(),
	}
	maps.Copy(sa, extra)
	cfg := map[string]any{
		"os_id":            "test-os",
		"jwt":              map[string]any{"algorithms": []string{"HS256"}, "verification_keys": []string{randomSecret("sa-")}},
		"service_accounts": sa,
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := harness.Start(t.Context(), harness.Options{Binary: binary(t), ConfigPath: path,
		Env: withQuickExit(nil), Args: []string{"--http-addr", "127.0.0.1:0"}})
	if err != nil {
		t.Fatalf("the server did not start: %v", err)
	}
	t.Cleanup(srv.Kill)
	return srv
}

// saAnswer is one decision as a transport rendered it.
type saAnswer struct {
	status int
	detail string
	user   string // x-agentos-user-id
	scopes string
	auth   string
	grpc   string // the gRPC code of a denial ("" over HTTP)
}

// saCheck asks srv over transport ("grpc" or "http") for GET path with tok,
// as the client at client.
func saCheck(t *testing.T, srv *harness.Server, transport, tok, path, client string) saAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), checkTimeout)
	defer cancel()
	if transport == "grpc" {
		b, err := harness.BuildRequest(conformance.Request{Method: "GET", Path: path, ClientAddress: client},
			map[string]string{"token": tok})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Check(ctx, b.Check)
		if err != nil {
			t.Fatalf("Check RPC: %v", err)
		}
		o := harness.Interpret(b, resp)
		for _, p := range o.Problems {
			t.Errorf("GET %s: %s", path, p)
		}
		a := saAnswer{status: o.Status, detail: o.Detail}
		if o.Allowed {
			a.user, a.scopes, a.auth = one(o.Upstream.Values("x-agentos-user-id")), one(o.Upstream.Values("x-agentos-scopes")), one(o.Upstream.Values("x-agentos-auth"))
		} else {
			a.grpc = codeName(resp.GetStatus().GetCode())
		}
		return a
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+srv.HTTPAddr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	// docs/CONTRACT.md §8: in HTTP mode the client is the last
	// X-Forwarded-For entry, the one the proxy appended.
	req.Header.Set("X-Forwarded-For", "203.0.113.99, "+client)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("HTTP check: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a := saAnswer{status: resp.StatusCode, user: resp.Header.Get("x-agentos-user-id"),
		scopes: resp.Header.Get("x-agentos-scopes"), auth: resp.Header.Get("x-agentos-auth")}
	if resp.StatusCode != 200 {
		var d struct {
			Detail string `json:"detail"`
		}
		if err := json.Unmarshal(body, &d); err != nil {
			t.Errorf("HTTP %d body %q is not the JSON detail", resp.StatusCode, body)
		}
		a.detail = d.Detail
	}
	return a
}

func one(vs []string) string {
	if len(vs) == 1 {
		return vs[0]
	}
	return strings.Join(vs, "|")
}

func codeName(c int32) string {
	return map[int32]string{7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 14: "UNAVAILABLE", 16: "UNAUTHENTICATED"}[c]
}

func wantAnswer(t *testing.T, what string, got saAnswer, status int, detail string) {
	t.Helper()
	if got.status != status || got.detail != detail {
		t.Errorf("%s = %d %q, want %d %q", what, got.status, got.detail, status, detail)
	}
}

// runSAScenario is the behaviour every database and transport must show.
func runSAScenario(t *testing.T, srv *harness.Server, db saDB, transport, client string) {
	t.Helper()
	get := func(tok string) saAnswer { return saCheck(t, srv, transport, tok, "/config", client) }

	a := get(saValid)
	if a.status != 200 || a.user != "sa:ci-bot" || a.scopes != "agents:run config:read" || a.auth != "service-account" {
		t.Errorf("valid: %+v, want 200 sa:ci-bot with its scopes", a)
	}
	wantAnswer(t, "revoked", get(saRevoked), 401, "Invalid or expired service account token")
	wantAnswer(t, "expired", get(saExpired), 401, "Invalid or expired service account token")
	if transport == "grpc" {
		if a := get(saExpired); a.grpc != "UNAUTHENTICATED" {
			t.Errorf("401 gRPC code %s", a.grpc)
		}
	}
	forbidden := saCheck(t, srv, transport, saValid, "/agents/web", client)
	_ = forbidden // a GET of one agent needs agents:read, which ci-bot lacks
	wantAnswer(t, "insufficient scopes", forbidden, 403, "Insufficient permissions")

	// Throttling: the unknown token above and the revoked and expired ones
	// were failures too; the window is short, so start from a clean count.
	poll.For(t, "the failure window to pass", func() bool {
		return get(saUnknown).status == 401
	})
	var last saAnswer
	for range saMaxFails + 1 {
		last = get(saUnknown)
	}
	wantAnswer(t, "unknown past max_failures", last, 429, "Too many failed authentication attempts")
	if transport == "grpc" && last.grpc != "RESOURCE_EXHAUSTED" {
		t.Errorf("429 gRPC code %s, want RESOURCE_EXHAUSTED", last.grpc)
	}
	if a := get(saValid); a.status != 200 {
		t.Errorf("a valid token from the throttled client: %+v, want 200 (never throttled)", a)
	}
	other := saCheck(t, srv, transport, saUnknown, "/config", client+"1")
	wantAnswer(t, "unknown from another client", other, 401, "Invalid or expired service account token")
	start := time.Now()
	poll.For(t, "throttling to end after failure_window", func() bool { return get(saUnknown).status == 401 })
	if waited := time.Since(start); waited > saWindow+5*time.Second {
		t.Errorf("throttling lasted %v after the last failures, want about failure_window (%v)", waited, saWindow)
	}
}

// revocationTiming revokes an account that was just verified and measures
// how long the service keeps accepting it: at most cache_ttl (plus the
// time of a check).
func revocationTiming(t *testing.T, srv *harness.Server, db saDB) {
	t.Helper()
	if a := saCheck(t, srv, "grpc", saRevoke, "/config", "192.0.2.50"); a.status != 200 {
		t.Fatalf("revoke-me before revocation: %+v", a)
	}
	db.revoke(t, "revoke-me")
	revoked := time.Now()
	poll.For(t, "the revocation to take effect", func() bool {
		return saCheck(t, srv, "grpc", saRevoke, "/config", "192.0.2.50").status == 401
	})
	if took := time.Since(revoked); took > saCacheTTL+3*time.Second {
		t.Errorf("a revoked token kept working %v, want at most cache_ttl (%v)", took, saCacheTTL)
	}
	wantAnswer(t, "revoked over HTTP", saCheck(t, srv, "http", saRevoke, "/config", "192.0.2.51"), 401,
		"Invalid or expired service account token")
}

func readyz(t *testing.T, srv *harness.Server) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + srv.AdminAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServiceAccountsPostgres: a real PostgreSQL server read through the
// README's read-only role, over gRPC and HTTP; the database stopped
// mid-run gives 503 (the service stays ready, JWTs unaffected), and
// service accounts work again when it returns, without a restart.
func TestServiceAccountsPostgres(t *testing.T) {
	db := postgresAccounts(t)
	srv := startSAServer(t, db)
	for _, transport := range []string{"grpc", "http"} {
		t.Run(transport, func(t *testing.T) {
			runSAScenario(t, srv, db, transport, "10.1.0."+map[string]string{"grpc": "7", "http": "8"}[transport])
		})
	}
	t.Run("revocation within cache_ttl", func(t *testing.T) { revocationTiming(t, srv, db) })
	t.Run("database stopped and back", func(t *testing.T) {
		db.stop(t)
		poll.For(t, "503 once the cache is stale", func() bool {
			return saCheck(t, srv, "grpc", saValid, "/config", "10.1.9.9").status == 503
		})
		a := saCheck(t, srv, "grpc", saValid, "/config", "10.1.9.9")
		wantAnswer(t, "valid token, database down", a, 503, "Authentication is temporarily unavailable")
		if a.grpc != "UNAVAILABLE" {
			t.Errorf("503 gRPC code %s, want UNAVAILABLE", a.grpc)
		}
		wantAnswer(t, "over HTTP, database down", saCheck(t, srv, "http", saValid, "/config", "10.1.9.9"), 503,
			"Authentication is temporarily unavailable")
		// A database error is never a failure: far more than max_failures
		// of them, and the valid token still works when it returns.
		for range 2 * saMaxFails {
			saCheck(t, srv, "grpc", saUnknown, "/config", "10.1.9.9")
		}
		if code, body := readyz(t, srv); code != 200 || !strings.Contains(body, "DOWN") || strings.Contains(body, "gw-read-only-pw") {
			t.Errorf("/readyz with the database down = %d %q, want 200 naming the database state, never its password", code, body)
		}
		db.start(t)
		poll.For(t, "service accounts to work again", func() bool {
			return saCheck(t, srv, "grpc", saValid, "/config", "10.1.9.9").status == 200
		})
		if code, body := readyz(t, srv); code != 200 || !strings.Contains(body, "database up") {
			t.Errorf("/readyz with the database back = %d %q", code, body)
		}
	})
	fams := scrape(t, srv)
	for _, res := range []string{"ok", "cached", "invalid", "throttled", "error"} {
		if v, ok := value(fams, "agentos_authz_service_account_lookups_total", map[string]string{"result": res}); !ok || v < 1 {
			t.Errorf("lookups{result=%q} = %v, %v; want at least 1", res, v, ok)
		}
	}
	if v, ok := value(fams, "agentos_authz_service_account_database_up", nil); !ok || v != 1 {
		t.Errorf("database_up = %v, %v; want 1", v, ok)
	}
	if _, ok := value(fams, "agentos_authz_service_account_lookup_duration_seconds", nil); !ok {
		t.Error("no lookup latency histogram")
	}
	out := srv.Output()
	for _, secret := range []string{saValid, saUnknown, "gw-read-only-pw", conformanceHash(saValid)} {
		if strings.Contains(out, secret) {
			t.Errorf("the service's output holds a token, its hash or the database password (%.12s…)", secret)
		}
	}
	if !strings.Contains(out, "ci-bot") || !strings.Contains(out, "revoked") {
		t.Errorf("the logs name neither the account nor the failure reason\n%s", srv.Tail(30))
	}
	noPanics(t, srv)
}

// TestServiceAccountsSQLite: AgentOS's SQLite file, over gRPC and HTTP,
// and concurrent checks (run the suite with -race: the binary is then a
// race build).
func TestServiceAccountsSQLite(t *testing.T) {
	db := sqliteAccounts(t)
	srv := startSAServer(t, db)
	for _, transport := range []string{"grpc", "http"} {
		t.Run(transport, func(t *testing.T) {
			runSAScenario(t, srv, db, transport, "10.2.0."+map[string]string{"grpc": "7", "http": "8"}[transport])
		})
	}
	t.Run("revocation within cache_ttl", func(t *testing.T) { revocationTiming(t, srv, db) })
	t.Run("concurrent checks", func(t *testing.T) {
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				transport := []string{"grpc", "http"}[g%2]
				for i := range 20 {
					// Each goroutine is its own client, far below max_failures
					// per window only for its valid tokens: failures may be 429.
					client := fmt.Sprintf("10.3.%d.%d", g, i%2)
					if a := saCheck(t, srv, transport, saValid, "/config", client); a.status != 200 || a.user != "sa:ci-bot" {
						t.Errorf("valid token under load: %+v", a)
						return
					}
					if a := saCheck(t, srv, transport, saExpired, "/config", client); a.status != 401 && a.status != 429 {
						t.Errorf("expired token under load: %+v", a)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
	noPanics(t, srv)
}

// TestServiceAccountsWrongTable: a table or schema the database does not
// have is 503 for service-account tokens, never an allow and never fatal:
// the service serves, JWT traffic passes, and /readyz names the problem.
func TestServiceAccountsWrongTable(t *testing.T) {
	db := sqliteAccounts(t)
	srv := startSAServerWith(t, db, map[string]any{"table": "not_agno_service_accounts"})
	wantAnswer(t, "valid token, wrong table", saCheck(t, srv, "grpc", saValid, "/config", "10.4.0.1"), 503,
		"Authentication is temporarily unavailable")
	if code, body := readyz(t, srv); code != 200 || !strings.Contains(body, "NOT USABLE") {
		t.Errorf("/readyz with a wrong table = %d %q, want 200 naming the problem", code, body)
	}
	noPanics(t, srv)
}

func conformanceHash(tok string) string { return conformance.TokenHash(tok) }
