package serviceaccount

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url         string
		wantDialect Dialect
		wantPath    string
		wantErr     string // substring; "" = no error
	}{
		{url: "postgresql://u:pw@db:5432/ai?sslmode=require", wantDialect: DialectPostgres},
		{url: "postgres://u@db/ai", wantDialect: DialectPostgres},
		{url: "postgresql+psycopg://ai:ai@localhost:5532/ai", wantDialect: DialectPostgres},
		{url: "postgresql+asyncpg://ai:ai@localhost:5532/ai", wantDialect: DialectPostgres},
		{url: "sqlite:////var/lib/agno/agno.db", wantDialect: DialectSQLite, wantPath: "/var/lib/agno/agno.db"},
		{url: "sqlite+aiosqlite:////tmp/a.db", wantDialect: DialectSQLite, wantPath: "/tmp/a.db"},
		{url: "sqlite:///tmp/agno.db", wantDialect: DialectSQLite, wantPath: filepath.Join(wd, "tmp/agno.db")},
		{url: "sqlite:///agno.db", wantDialect: DialectSQLite, wantPath: filepath.Join(wd, "agno.db")},
		{url: "sqlite://", wantErr: "in-memory"},
		{url: "sqlite:///", wantErr: "in-memory"},
		{url: "sqlite:///:memory:", wantErr: "memory"},
		{url: "sqlite://host/agno.db", wantErr: "no host"},
		{url: "sqlite:///agno.db?mode=rw", wantErr: "query options"},
		{url: "sqlite+pysqlcipher:///agno.db", wantErr: "unsupported SQLite driver"},
		{url: "mysql://u:pw@db/ai", wantErr: `unsupported database URL scheme "mysql"`},
		{url: "/var/lib/agno.db", wantErr: "not a database URL"},
		{url: "postgresql://u:s3cr%zzet@db/ai", wantErr: "malformed PostgreSQL URL"},
		{url: "postgresql://u:s3cret@db:port/ai", wantErr: "malformed PostgreSQL URL"},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			loc, err := ParseURL(tc.url)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseURL(%q) = %v, want an error with %q", tc.url, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "s3cr") || strings.Contains(err.Error(), ":pw@") {
					t.Fatalf("ParseURL(%q) error echoes the password: %v", tc.url, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURL(%q) = %v", tc.url, err)
			}
			if loc.Dialect != tc.wantDialect || loc.Path != tc.wantPath {
				t.Fatalf("ParseURL(%q) = %v %q, want %v %q", tc.url, loc.Dialect, loc.Path, tc.wantDialect, tc.wantPath)
			}
			if strings.Contains(loc.Redacted, ":pw@") {
				t.Fatalf("Redacted = %q keeps the password", loc.Redacted)
			}
			if loc.Dialect == DialectPostgres && !strings.HasPrefix(loc.PostgresURL, "postgresql://") {
				t.Fatalf("PostgresURL = %q", loc.PostgresURL)
			}
		})
	}
}

func TestOpenConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{name: "empty url", cfg: Config{}, want: []string{"service_accounts.db_url: empty"}},
		{name: "NUL in table", cfg: Config{URL: "sqlite:////x.db", Table: "a\x00b"}, want: []string{"service_accounts.table: contains a NUL"}},
		{name: "long schema", cfg: Config{URL: "postgresql://db/ai", Schema: strings.Repeat("s", 64)}, want: []string{"service_accounts.db_schema: 64 bytes"}},
		{name: "padded table", cfg: Config{URL: "postgresql://db/ai", Table: " agno_service_accounts"}, want: []string{"service_accounts.table: has leading"}},
		{name: "every problem", cfg: Config{URL: "redis://x", Table: "a\x00", Schema: "\xff"},
			want: []string{"service_accounts.db_url: unsupported", "service_accounts.table:", "service_accounts.db_schema: not valid UTF-8"}},
		{name: "pgx setting", cfg: Config{URL: "postgresql://u:hunter2@db/ai?sslmode=sometimes"}, want: []string{"service_accounts.db_url:", "sslmode"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.Context(), tc.cfg, nil)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%+v) = nil error", tc.cfg)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Open error echoes the password: %v", err)
			}
		})
	}
}

func TestOptionsCheck(t *testing.T) {
	o := DefaultOptions()
	if err := o.Check(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	o.CacheTTL, o.MaxFailures, o.FailureWindow = -time.Second, MaxMaxFailures+1, 0
	err := o.Check()
	for _, w := range []string{"service_accounts.cache_ttl", "service_accounts.max_failures", "service_accounts.failure_window"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Check() = %v, want %q", err, w)
		}
	}
	if _, err := NewAuthenticator(nil, DefaultOptions(), nil); err == nil {
		t.Error("NewAuthenticator(nil store) = nil error")
	}
}

func TestTokens(t *testing.T) {
	// AgentOS: sha256 hex of the whole token (hash_string_sha256).
	if got, want := HashToken("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Fatalf("HashToken(abc) = %s, want %s", got, want)
	}
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		tok, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		body, ok := strings.CutPrefix(tok, TokenPrefix)
		// 32 random bytes in base62: 43 digits, fewer only with leading zero bytes.
		if !ok || len(body) < 40 || len(body) > 43 || strings.Trim(body, base62) != "" || seen[tok] {
			t.Fatalf("NewToken() = %q", tok)
		}
		seen[tok] = true
	}
}

func TestKindAndReasonStrings(t *testing.T) {
	if (Result{}).Kind != KindError || (Result{}).Authenticated() {
		t.Fatal("the zero Result must be a denying error")
	}
	want := map[Kind]string{KindError: "error", KindOK: "ok", KindCached: "cached", KindInvalid: "invalid", KindThrottled: "throttled"}
	for k, s := range want {
		if k.String() != s {
			t.Errorf("Kind(%d).String() = %q, want %q", k, k.String(), s)
		}
	}
	for r, s := range map[Reason]string{ReasonNone: "", ReasonUnknown: "unknown", ReasonRevoked: "revoked", ReasonExpired: "expired"} {
		if r.String() != s {
			t.Errorf("Reason(%d).String() = %q, want %q", r, r.String(), s)
		}
	}
	if !errors.Is(&storeError{sentinel: ErrSchema, msg: "x"}, ErrSchema) {
		t.Error("storeError does not unwrap to its sentinel")
	}
}
