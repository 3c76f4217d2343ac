package serviceaccount

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Seed is a service account to insert with [Admin.Insert].
type Seed struct {
	// ID defaults to a random 32-hex-digit id.
	ID string
	// Name is the account name (AgentOS: a lower-case slug).
	Name string
	// Token is the plaintext `agno_pat_…` token; only its SHA-256 and its 16-character
	// display prefix are stored, as AgentOS stores them.
	Token string
	// Scopes are stored as a JSON list (nil stores []).
	Scopes []string
	// CreatedAt defaults to the time of the insert.
	CreatedAt time.Time
	// ExpiresAt is the expiry; zero stores NULL (never expires).
	ExpiresAt time.Time
	// RevokedAt is the revocation time; zero stores NULL (active).
	RevokedAt time.Time
}

// tokenDisplayPrefix is how much of the plaintext AgentOS keeps for display
// (agno/os/service_accounts.py, TOKEN_DISPLAY_PREFIX_LENGTH).
const tokenDisplayPrefix = 16

// Admin is a read-write handle on the service-account table, for `serve --dev` and for
// tests: it creates AgentOS's table and inserts and revokes accounts. It is never what
// the service authenticates with (that is the read-only [Store]). Safe for concurrent
// use.
type Admin struct {
	dialect Dialect
	pg      *pgx.Conn
	sq      *sql.DB
	schema  string
	ident   string // the quoted table
	table   string
	mu      chan struct{} // serialises use of the single pgx connection
}

// OpenAdmin connects read-write to cfg's database.
func OpenAdmin(ctx context.Context, cfg Config) (*Admin, error) {
	r, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	a := &Admin{dialect: r.loc.Dialect, schema: r.schema, table: r.table, mu: make(chan struct{}, 1)}
	switch r.loc.Dialect {
	case DialectPostgres:
		cc, err := pgx.ParseConfig(r.loc.PostgresURL)
		if err != nil {
			return nil, fmt.Errorf("service_accounts.db_url: %s", pgParseMessage(err, r.loc.Redacted))
		}
		if a.pg, err = pgx.ConnectConfig(ctx, cc); err != nil {
			return nil, fmt.Errorf("%w: connecting to %s: %v", ErrUnavailable, r.loc.Redacted, err)
		}
		a.ident = pgx.Identifier{r.schema, r.table}.Sanitize()
	case DialectSQLite:
		u := url.URL{Scheme: "file", Path: r.loc.Path}
		u.RawQuery = url.Values{"_busy_timeout": {strconv.FormatInt(r.queryTimeout.Milliseconds(), 10)}}.Encode()
		if a.sq, err = sql.Open("sqlite", u.String()); err != nil {
			return nil, fmt.Errorf("opening %s: %w", r.loc.Path, err)
		}
		a.sq.SetMaxOpenConns(1)
		a.ident = quoteSQLite(r.table)
	}
	return a, nil
}

// Close closes the connection.
func (a *Admin) Close() error {
	if a.pg != nil {
		return a.pg.Close(context.Background())
	}
	return a.sq.Close()
}

// CreateTable creates AgentOS's service-account table if it does not exist (and, for
// Postgres, its schema), with AgentOS's exact column types, constraints and indexes:
// agno/db/postgres/schemas.py (VARCHAR, JSONB scopes, BIGINT epoch seconds) and
// agno/db/sqlite/schemas.py (the same with JSON scopes), as SQLAlchemy renders them.
func (a *Admin) CreateTable(ctx context.Context) error {
	scopesType := "JSON"
	if a.dialect == DialectPostgres {
		scopesType = "JSONB"
	}
	idx := func(name string) string {
		if a.dialect == DialectPostgres {
			return pgx.Identifier{name}.Sanitize()
		}
		return quoteSQLite(name)
	}
	var stmts []string
	if a.dialect == DialectPostgres {
		stmts = append(stmts, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{a.schema}.Sanitize())
	}
	stmts = append(stmts,
		`CREATE TABLE IF NOT EXISTS `+a.ident+` (
	id VARCHAR NOT NULL,
	name VARCHAR NOT NULL,
	user_id VARCHAR,
	token_hash VARCHAR NOT NULL,
	token_prefix VARCHAR NOT NULL,
	scopes `+scopesType+` NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT,
	last_used_at BIGINT,
	revoked_at BIGINT,
	created_by VARCHAR,
	PRIMARY KEY (id),
	UNIQUE (token_hash)
)`,
		`CREATE UNIQUE INDEX IF NOT EXISTS `+idx(a.table+"_uq_active_name")+` ON `+a.ident+` (name) WHERE revoked_at IS NULL`,
		`CREATE INDEX IF NOT EXISTS `+idx("idx_"+a.table+"_created_at")+` ON `+a.ident+` (created_at)`,
		`CREATE INDEX IF NOT EXISTS `+idx("idx_"+a.table+"_token_hash")+` ON `+a.ident+` (token_hash)`,
	)
	for _, s := range stmts {
		if err := a.exec(ctx, s); err != nil {
			return fmt.Errorf("creating the service-account table: %w", err)
		}
	}
	return nil
}

// Insert adds the accounts. Errors name the account, never its token.
func (a *Admin) Insert(ctx context.Context, seeds ...Seed) error {
	for _, s := range seeds {
		if s.Name == "" {
			return errors.New("inserting a service account: empty name")
		}
		if !strings.HasPrefix(s.Token, TokenPrefix) || len(s.Token) < tokenDisplayPrefix {
			return fmt.Errorf("inserting service account %q: the token is not an %s… token", s.Name, TokenPrefix)
		}
		id := s.ID
		if id == "" {
			var b [16]byte
			if _, err := rand.Read(b[:]); err != nil {
				return err
			}
			id = hex.EncodeToString(b[:])
		}
		scopes := s.Scopes
		if scopes == nil {
			scopes = []string{}
		}
		js, err := json.Marshal(scopes)
		if err != nil {
			return err
		}
		created := s.CreatedAt
		if created.IsZero() {
			created = time.Now()
		}
		args := []any{id, s.Name, HashToken(s.Token), s.Token[:tokenDisplayPrefix], string(js),
			created.Unix(), nullEpoch(s.ExpiresAt), nullEpoch(s.RevokedAt)}
		q := `INSERT INTO ` + a.ident + ` (id, name, token_hash, token_prefix, scopes, created_at, expires_at, revoked_at) VALUES `
		if a.dialect == DialectPostgres {
			q += `($1, $2, $3, $4, $5::jsonb, $6, $7, $8)`
		} else {
			q += `(?, ?, ?, ?, ?, ?, ?, ?)`
		}
		if err := a.exec(ctx, q, args...); err != nil {
			return fmt.Errorf("inserting service account %q: %w", s.Name, err)
		}
	}
	return nil
}

// Revoke sets revoked_at of the active account name to at, as AgentOS's DELETE
// /service-accounts/{id} does.
func (a *Admin) Revoke(ctx context.Context, name string, at time.Time) error {
	q := `UPDATE ` + a.ident + ` SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL`
	if a.dialect == DialectSQLite {
		q = `UPDATE ` + a.ident + ` SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL`
	}
	if err := a.exec(ctx, q, at.Unix(), name); err != nil {
		return fmt.Errorf("revoking service account %q: %w", name, err)
	}
	return nil
}

// exec runs one statement. Driver messages can quote parameters; the only secret among
// them is the token hash, which is masked.
func (a *Admin) exec(ctx context.Context, q string, args ...any) error {
	var err error
	if a.pg != nil {
		select {
		case a.mu <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		_, err = a.pg.Exec(ctx, q, args...)
		<-a.mu
	} else {
		_, err = a.sq.ExecContext(ctx, q, args...)
	}
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, arg := range args {
		if s, ok := arg.(string); ok && len(s) == 64 {
			msg = strings.ReplaceAll(msg, s, "[token hash]")
		}
	}
	return errors.New(msg)
}

func nullEpoch(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Unix()
}

// Provision opens cfg's database read-write, creates AgentOS's table if needed, inserts
// the accounts and closes: what `serve --dev` does with a temporary SQLite file.
func Provision(ctx context.Context, cfg Config, seeds ...Seed) error {
	a, err := OpenAdmin(ctx, cfg)
	if err != nil {
		return err
	}
	err = a.CreateTable(ctx)
	if err == nil {
		err = a.Insert(ctx, seeds...)
	}
	return errors.Join(err, a.Close())
}

// base62 is AgentOS's token alphabet (agno/os/service_accounts.py, _BASE62_ALPHABET).
const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewToken mints a token as AgentOS does: `agno_pat_` and the base62 form of 32 random
// bytes (read as a big-endian integer).
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	n := new(big.Int).SetBytes(b[:])
	if n.Sign() == 0 {
		return TokenPrefix + "0", nil
	}
	var digits []byte
	sixtyTwo, rem := big.NewInt(62), new(big.Int)
	for n.Sign() > 0 {
		n.DivMod(n, sixtyTwo, rem)
		digits = append(digits, base62[rem.Int64()])
	}
	for i, j := 0, len(digits)-1; i < j; i, j = i+1, j-1 {
		digits[i], digits[j] = digits[j], digits[i]
	}
	return TokenPrefix + string(digits), nil
}
