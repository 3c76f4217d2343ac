package serviceaccount

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"
)

// Defaults of [Config] (docs/CONTRACT.md §4, `service_accounts`).
const (
	DefaultSchema       = "ai"
	DefaultTable        = "agno_service_accounts"
	DefaultQueryTimeout = 2 * time.Second
	DefaultMaxConns     = 4
)

// TokenPrefix starts every AgentOS service-account token.
const TokenPrefix = "agno_pat_"

// Config says where AgentOS's service-account table is. Only URL is required.
type Config struct {
	// URL is `service_accounts.db_url`: `postgresql://…` or `postgres://…` (any libpq URL
	// pgx reads: sslmode, sslrootcert, connect_timeout, …), or SQLAlchemy's SQLite form
	// `sqlite:///<path>` (see [ParseURL]). SQLAlchemy driver suffixes as AgentOS's own
	// db_url carries them (`postgresql+psycopg://`, `sqlite+aiosqlite:///`, …) are accepted
	// and ignored.
	URL string
	// Schema is the Postgres schema (default "ai"); ignored for SQLite.
	Schema string
	// Table is the table name (default "agno_service_accounts").
	Table string
	// QueryTimeout bounds each query (default 2s); also the Postgres connect timeout when
	// the URL sets none, and its statement_timeout.
	QueryTimeout time.Duration
	// MaxConns caps the connections to the database (default 4).
	MaxConns int
}

// Dialect is the kind of database a URL points at.
type Dialect uint8

// The supported databases.
const (
	DialectPostgres Dialect = iota + 1
	DialectSQLite
)

// String returns "postgres" or "sqlite".
func (d Dialect) String() string {
	switch d {
	case DialectPostgres:
		return "postgres"
	case DialectSQLite:
		return "sqlite"
	}
	return "unknown"
}

// Location is a parsed db_url.
type Location struct {
	Dialect Dialect
	// PostgresURL is the URL handed to pgx (scheme normalised to postgresql://), for
	// DialectPostgres.
	PostgresURL string
	// Path is the SQLite file's absolute path, for DialectSQLite.
	Path string
	// Redacted is the URL with any password masked: safe for logs and errors.
	Redacted string
}

// ParseURL reads a db_url. PostgreSQL: `postgresql://` or `postgres://` (optionally with
// a SQLAlchemy driver suffix, `postgresql+psycopg://`); the rest is read by pgx when the
// store opens. SQLite: SQLAlchemy's `sqlite:///<path>` — the part after the third slash is
// the path, so `sqlite:////var/lib/agno.db` is the absolute /var/lib/agno.db and
// `sqlite:///agno.db` is agno.db relative to the working directory, resolved here against
// it as SQLAlchemy's sqlite3 would (the result is always absolute). An in-memory SQLite
// database, a host, or query options on a SQLite URL are refused: the store needs a file
// AgentOS writes and opens it with its own read-only options. Errors never contain the
// URL's password.
func ParseURL(raw string) (Location, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || scheme == "" {
		return Location{}, errors.New("not a database URL (want postgresql://… or sqlite:///path)")
	}
	base, driver, _ := strings.Cut(strings.ToLower(scheme), "+")
	switch base {
	case "postgresql", "postgres":
		if driver != "" && !knownDriver(base, driver) {
			return Location{}, fmt.Errorf("unsupported PostgreSQL driver %q in the URL scheme (drop the +%s)", driver, driver)
		}
		normal := "postgresql://" + rest
		u, err := url.Parse(normal)
		if err != nil {
			return Location{}, errors.New("malformed PostgreSQL URL (check the user, password, host, port and percent-escapes)")
		}
		return Location{Dialect: DialectPostgres, PostgresURL: normal, Redacted: redactURL(u)}, nil
	case "sqlite":
		if driver != "" && !knownDriver(base, driver) {
			return Location{}, fmt.Errorf("unsupported SQLite driver %q in the URL scheme (drop the +%s)", driver, driver)
		}
		return parseSQLite(raw, rest)
	}
	if !utf8.ValidString(scheme) || len(scheme) > 40 {
		return Location{}, errors.New("unsupported database URL scheme (want postgresql:// or sqlite:///)")
	}
	return Location{}, fmt.Errorf("unsupported database URL scheme %q (want postgresql:// or sqlite:///)", scheme)
}

func knownDriver(base, driver string) bool {
	switch base {
	case "postgresql", "postgres":
		return driver == "psycopg" || driver == "psycopg2" || driver == "asyncpg" || driver == "pg8000" || driver == "psycopg_async"
	case "sqlite":
		return driver == "pysqlite" || driver == "aiosqlite"
	}
	return false
}

func parseSQLite(raw, rest string) (Location, error) {
	// SQLAlchemy: sqlite://<host>/<database>; SQLite takes no host, so the database is
	// everything after "sqlite:///".
	if rest == "" || rest == "/" {
		return Location{}, errors.New("sqlite:// without a path is an in-memory database; give the AgentOS database file as sqlite:///<path>")
	}
	if !strings.HasPrefix(rest, "/") {
		return Location{}, errors.New("a SQLite URL has no host: write sqlite:///<relative path> or sqlite:////<absolute path>")
	}
	p := rest[1:]
	if strings.ContainsAny(p, "?#") {
		return Location{}, errors.New("query options on a SQLite URL are not supported (the file is always opened read-only)")
	}
	if p == ":memory:" || strings.HasPrefix(p, "file:") {
		return Location{}, errors.New("a SQLite memory or URI database is not supported; give the AgentOS database file as sqlite:///<path>")
	}
	if strings.ContainsRune(p, 0) || !utf8.ValidString(p) {
		return Location{}, errors.New("the SQLite path has a NUL byte or is not valid UTF-8")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return Location{}, fmt.Errorf("cannot resolve the SQLite path against the working directory: %w", err)
	}
	return Location{Dialect: DialectSQLite, Path: abs, Redacted: raw}, nil
}

// redactURL returns u without its password, nor the value of any query option whose name
// mentions a password.
func redactURL(u *url.URL) string {
	c := *u
	if c.RawQuery != "" {
		q := c.Query()
		for k := range q {
			if strings.Contains(strings.ToLower(k), "password") {
				q.Set(k, "xxxxx")
			}
		}
		c.RawQuery = q.Encode()
	}
	return c.Redacted()
}

// resolved is a Config with its defaults applied and its URL parsed.
type resolved struct {
	loc          Location
	schema       string
	table        string
	queryTimeout time.Duration
	maxConns     int
}

// resolve applies the defaults and checks every field; each error names its field
// (as the YAML path, so the configuration layer can pass it through).
func (c Config) resolve() (resolved, error) {
	r := resolved{schema: c.Schema, table: c.Table, queryTimeout: c.QueryTimeout, maxConns: c.MaxConns}
	var errs []error
	if strings.TrimSpace(c.URL) == "" {
		errs = append(errs, errors.New("service_accounts.db_url: empty"))
	} else if loc, err := ParseURL(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("service_accounts.db_url: %w", err))
	} else {
		r.loc = loc
	}
	if r.schema == "" {
		r.schema = DefaultSchema
	}
	if r.table == "" {
		r.table = DefaultTable
	}
	if err := checkIdentifier(r.schema); err != nil {
		errs = append(errs, fmt.Errorf("service_accounts.db_schema: %w", err))
	}
	if err := checkIdentifier(r.table); err != nil {
		errs = append(errs, fmt.Errorf("service_accounts.table: %w", err))
	}
	switch {
	case r.queryTimeout == 0:
		r.queryTimeout = DefaultQueryTimeout
	case r.queryTimeout < 0:
		errs = append(errs, errors.New("query timeout: negative"))
	}
	switch {
	case r.maxConns == 0:
		r.maxConns = DefaultMaxConns
	case r.maxConns < 0 || r.maxConns > 1000:
		errs = append(errs, fmt.Errorf("max connections: %d is not within 1..1000", r.maxConns))
	}
	return r, errors.Join(errs...)
}

// checkIdentifier accepts any name the databases can hold as a quoted identifier.
// Postgres silently truncates a name past 63 bytes (NAMEDATALEN-1), which would query
// another table than the one configured, so a longer name is refused.
func checkIdentifier(s string) error {
	switch {
	case strings.ContainsRune(s, 0):
		return errors.New("contains a NUL byte")
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	case len(s) > 63:
		return fmt.Errorf("%d bytes, longer than the 63 a PostgreSQL identifier holds", len(s))
	case strings.TrimSpace(s) != s:
		return errors.New("has leading or trailing whitespace")
	}
	return nil
}

// quoteSQLite quotes an identifier for SQLite: double quotes, an inner quote doubled.
func quoteSQLite(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
