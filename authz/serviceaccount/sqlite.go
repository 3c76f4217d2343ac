package serviceaccount

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteDB reads the table from AgentOS's SQLite file, opened read-only.
type sqliteDB struct {
	db    *sql.DB
	lookQ string
	pingQ string
}

var _ backend = (*sqliteDB)(nil)

func openSQLite(r resolved) (*sqliteDB, error) {
	db, err := sql.Open("sqlite", sqliteDSN(r.loc.Path, r.queryTimeout))
	if err != nil {
		return nil, fmt.Errorf("service_accounts.db_url: cannot open %s: %w", r.loc.Path, err)
	}
	db.SetMaxOpenConns(r.maxConns)
	db.SetMaxIdleConns(r.maxConns)
	// AgentOS may replace the file (a restore, a re-provisioned volume): connections are
	// recycled so the store follows the path, not an old inode.
	db.SetConnMaxLifetime(time.Minute)
	ident := quoteSQLite(r.table)
	return &sqliteDB{
		db:    db,
		lookQ: `SELECT ` + pgColumns + ` FROM ` + ident + ` WHERE token_hash = ?`,
		pingQ: `SELECT ` + pgColumns + ` FROM ` + ident + ` LIMIT 0`,
	}, nil
}

// sqliteDSN is a SQLite URI for path: mode=ro opens the file read-only (and never
// creates it); modernc's _query_only sets PRAGMA query_only, which refuses any write on
// the connection as a second guard; a busy timeout waits out AgentOS's short write
// locks (it updates last_used_at) instead of failing the lookup.
func sqliteDSN(path string, timeout time.Duration) string {
	u := url.URL{Scheme: "file", Path: path}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Set("_query_only", "1")
	q.Set("_busy_timeout", strconv.FormatInt(timeout.Milliseconds(), 10))
	u.RawQuery = q.Encode()
	return u.String()
}

func (s *sqliteDB) lookup(ctx context.Context, hash string) (row, bool, error) {
	var (
		r         row
		scopes    sql.RawBytes
		exp, revk any
	)
	rows, err := s.db.QueryContext(ctx, s.lookQ, hash)
	if err != nil {
		return row{}, false, err
	}
	defer rows.Close()
	if !rows.Next() {
		return row{}, false, rows.Err()
	}
	var id, name sql.NullString
	if err := rows.Scan(&id, &name, &scopes, &exp, &revk); err != nil {
		return row{}, false, fmt.Errorf("%w: %v", ErrSchema, err)
	}
	if !id.Valid || !name.Valid {
		return row{}, false, fmt.Errorf("%w: a row has a NULL id or name", ErrSchema)
	}
	r.id, r.name = id.String, name.String
	if scopes != nil {
		r.scopes = append([]byte(nil), scopes...)
	}
	if r.expiresAt, err = sqliteEpoch("expires_at", exp); err != nil {
		return row{}, false, err
	}
	if r.revokedAt, err = sqliteEpoch("revoked_at", revk); err != nil {
		return row{}, false, err
	}
	return r, true, rows.Err()
}

// sqliteEpoch reads a time column: SQLite keeps what was written, so an integer is taken
// as is and a real is truncated as AgentOS's int() would; anything else is not AgentOS's.
func sqliteEpoch(col string, v any) (*int64, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case int64:
		return &x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) || x >= math.MaxInt64 || x <= math.MinInt64 {
			return nil, fmt.Errorf("%w: %s is not epoch seconds", ErrSchema, col)
		}
		n := int64(x)
		return &n, nil
	}
	return nil, fmt.Errorf("%w: %s is not epoch seconds (a %T)", ErrSchema, col, v)
}

func (s *sqliteDB) ping(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, s.pingQ)
	if err != nil {
		return err
	}
	return errors.Join(rows.Close(), rows.Err())
}

// classify: "no such table/column" and friends (SQLITE_ERROR on prepare) are the
// table's fault; a file that cannot be opened, is locked past the busy timeout, is not a
// database, or a cancelled query, is the database being unavailable.
func (s *sqliteDB) classify(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_ERROR, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_AUTH:
			return ErrSchema
		}
		return ErrUnavailable
	}
	return ErrUnavailable
}

func (s *sqliteDB) close() { _ = s.db.Close() }
