package conformance

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

// ServiceAccount is one `service_accounts` fixture (README "Placeholders"):
// a row of AgentOS's agno_service_accounts table. Token is the plaintext
// agno_pat_ token; ExpiresAt and RevokedAt are nil (NULL), "now" or ±N with
// unit s, m, h or d, like token times.
type ServiceAccount struct {
	Name      string   `json:"name"`
	Token     string   `json:"token"`
	Scopes    []string `json:"scopes"`
	UserID    *string  `json:"user_id"`
	ExpiresAt *string  `json:"expires_at"`
	RevokedAt *string  `json:"revoked_at"`
}

// agentOSTableSQLite is AgentOS's service-account table as its SQLite
// schema creates it (agno/db/sqlite/schemas.py, SERVICE_ACCOUNT_TABLE_SCHEMA,
// as SQLAlchemy renders it): written here from AgentOS's definition, not
// taken from the service, so the service's reader is checked against an
// independent writer (the package comment).
const agentOSTableSQLite = `CREATE TABLE agno_service_accounts (
	id VARCHAR NOT NULL,
	name VARCHAR NOT NULL,
	user_id VARCHAR,
	token_hash VARCHAR NOT NULL,
	token_prefix VARCHAR NOT NULL,
	scopes JSON NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT,
	last_used_at BIGINT,
	revoked_at BIGINT,
	created_by VARCHAR,
	PRIMARY KEY (id)
)`

// TokenHash is what AgentOS stores of a token: the lower-case hex SHA-256
// of the whole token (agno/os/service_accounts.py, hash_token).
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// WriteSQLiteAccounts creates the SQLite file at path with AgentOS's table
// and the accounts, times relative to now, and returns its db_url
// (`sqlite:///` + the absolute path).
func WriteSQLiteAccounts(ctx context.Context, path string, accounts []ServiceAccount, now time.Time) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	u := url.URL{Scheme: "file", Path: abs}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return "", fmt.Errorf("sqlite %s: %w", abs, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, agentOSTableSQLite); err != nil {
		return "", fmt.Errorf("creating the table in %s: %w", abs, err)
	}
	if err := InsertAccounts(ctx, db, "?", "agno_service_accounts", accounts, now); err != nil {
		return "", err
	}
	return "sqlite:///" + abs, nil
}

// InsertAccounts inserts the accounts into table through db (placeholder
// "?" for SQLite, "$" for PostgreSQL's $1, $2, …).
func InsertAccounts(ctx context.Context, db *sql.DB, placeholder, table string, accounts []ServiceAccount, now time.Time) error {
	var cols []string
	for i := range 11 {
		if placeholder == "$" {
			cols = append(cols, fmt.Sprintf("$%d", i+1))
		} else {
			cols = append(cols, "?")
		}
	}
	q := `INSERT INTO ` + table + ` (id, name, user_id, token_hash, token_prefix, scopes, created_at, expires_at, last_used_at, revoked_at, created_by) VALUES (` + strings.Join(cols, ", ") + `)`
	for _, a := range accounts {
		row, err := AccountRow(a, now)
		if err != nil {
			return err
		}
		if _, err := db.ExecContext(ctx, q, row...); err != nil {
			return fmt.Errorf("inserting service account %q: %w", a.Name, err)
		}
	}
	return nil
}

// fixtureTime reads a fixture time: nil is NULL, else "now" or ±N[smhd]
// relative to now, as epoch seconds.
func fixtureTime(v *string, now time.Time) (any, error) {
	if v == nil {
		return nil, nil
	}
	t, ok := RelativeTime(*v, now)
	if !ok {
		return nil, errors.New(*v + ": want null, now or ±N with unit s, m, h or d")
	}
	return t.Unix(), nil
}

// AccountRow is the 11 values of a's row in column order (id, name,
// user_id, token_hash, token_prefix, scopes as JSON text, created_at,
// expires_at, last_used_at, revoked_at, created_by), for a test that
// writes AgentOS's table in another database.
func AccountRow(a ServiceAccount, now time.Time) ([]any, error) {
	if a.Name == "" || !strings.HasPrefix(a.Token, "agno_pat_") || len(a.Token) < 16 {
		return nil, fmt.Errorf("service account %q: a name and an agno_pat_ token are required", a.Name)
	}
	scopes := a.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	sj, err := json.Marshal(scopes)
	if err != nil {
		return nil, err
	}
	exp, err := fixtureTime(a.ExpiresAt, now)
	if err != nil {
		return nil, fmt.Errorf("service account %q: expires_at: %w", a.Name, err)
	}
	rev, err := fixtureTime(a.RevokedAt, now)
	if err != nil {
		return nil, fmt.Errorf("service account %q: revoked_at: %w", a.Name, err)
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	var user any
	if a.UserID != nil {
		user = *a.UserID
	}
	return []any{hex.EncodeToString(id[:]), a.Name, user, TokenHash(a.Token), a.Token[:16],
		string(sj), now.Add(-time.Hour).Unix(), exp, nil, rev, "harness"}, nil
}
