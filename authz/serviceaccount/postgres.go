package serviceaccount

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// postgres reads the table through a pgx pool whose sessions are read-only.
type postgres struct {
	pool   *pgxpool.Pool
	lookQ  string
	pingQ  string
	schema string
	table  string
}

var _ backend = (*postgres)(nil)

// columns are the ones the lookup reads, in scan order.
const pgColumns = `id, name, scopes, expires_at, revoked_at`

func openPostgres(ctx context.Context, r resolved) (*postgres, error) {
	pc, err := pgxpool.ParseConfig(r.loc.PostgresURL)
	if err != nil {
		return nil, fmt.Errorf("service_accounts.db_url: %s", pgParseMessage(err, r.loc.Redacted))
	}
	cc := pc.ConnConfig
	// Read-only by construction: every transaction of these sessions is READ ONLY, so an
	// INSERT/UPDATE/DELETE/DDL fails with SQLSTATE 25006 even if the role could write.
	cc.RuntimeParams["default_transaction_read_only"] = "on"
	// The server cancels a statement that outlives the per-query timeout even when the
	// client's cancel request is lost.
	cc.RuntimeParams["statement_timeout"] = strconv.FormatInt(r.queryTimeout.Milliseconds(), 10)
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = "agentos-authz"
	}
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = r.queryTimeout
	}
	// One round trip per lookup, no server-side prepared statements to go stale when
	// AgentOS migrates the table (and PgBouncer-safe).
	cc.DefaultQueryExecMode = pgx.QueryExecModeExec
	pc.MaxConns = int32(r.maxConns)
	pc.MinConns = 0
	pc.MaxConnIdleTime = time.Minute
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("service_accounts.db_url: %s", pgParseMessage(err, r.loc.Redacted))
	}
	ident := pgx.Identifier{r.schema, r.table}.Sanitize()
	return &postgres{
		pool:   pool,
		lookQ:  `SELECT ` + pgColumns + ` FROM ` + ident + ` WHERE token_hash = $1`,
		pingQ:  `SELECT ` + pgColumns + ` FROM ` + ident + ` LIMIT 0`,
		schema: r.schema,
		table:  r.table,
	}, nil
}

// pgParseMessage words a pgx configuration error without the connection string: pgx
// masks passwords only on a best-effort basis, so the string is replaced by our own
// redaction before the message is built.
func pgParseMessage(err error, redacted string) string {
	var pce *pgconn.ParseConfigError
	if errors.As(err, &pce) {
		pce.ConnString = redacted
		return pce.Error()
	}
	return "invalid PostgreSQL configuration in " + redacted
}

func (p *postgres) lookup(ctx context.Context, hash string) (row, bool, error) {
	var (
		r         row
		scopes    []byte
		exp, revk pgtype.Int8
	)
	err := p.pool.QueryRow(ctx, p.lookQ, hash).Scan(&r.id, &r.name, &scopes, &exp, &revk)
	if errors.Is(err, pgx.ErrNoRows) {
		return row{}, false, nil
	}
	if err != nil {
		return row{}, false, err
	}
	r.scopes = scopes
	if exp.Valid {
		r.expiresAt = &exp.Int64
	}
	if revk.Valid {
		r.revokedAt = &revk.Int64
	}
	return r, true, nil
}

// ping runs the lookup's SELECT with LIMIT 0 and checks the column types against
// AgentOS's table (agno/db/postgres/schemas.py, SERVICE_ACCOUNT_TABLE_SCHEMA: VARCHAR
// id and name, JSONB scopes, BIGINT times).
func (p *postgres) ping(ctx context.Context) error {
	rows, err := p.pool.Query(ctx, p.pingQ)
	if err != nil {
		return err
	}
	fields := rows.FieldDescriptions()
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	want := []struct {
		name string
		ok   func(oid uint32) bool
		desc string
	}{
		{"id", isPgText, "a text type"},
		{"name", isPgText, "a text type"},
		{"scopes", func(o uint32) bool { return o == pgtype.JSONBOID || o == pgtype.JSONOID }, "jsonb"},
		{"expires_at", isPgInt, "bigint"},
		{"revoked_at", isPgInt, "bigint"},
	}
	if len(fields) != len(want) {
		return fmt.Errorf("%w: unexpected column count %d", ErrSchema, len(fields))
	}
	for i, w := range want {
		if !w.ok(fields[i].DataTypeOID) {
			return fmt.Errorf("%w: column %s is not %s (type oid %d)", ErrSchema, w.name, w.desc, fields[i].DataTypeOID)
		}
	}
	return nil
}

func isPgText(oid uint32) bool {
	return oid == pgtype.VarcharOID || oid == pgtype.TextOID || oid == pgtype.BPCharOID
}

func isPgInt(oid uint32) bool {
	return oid == pgtype.Int8OID || oid == pgtype.Int4OID || oid == pgtype.Int2OID
}

// classify: SQLSTATE class 42 (syntax error or access rule violation: undefined table
// 42P01, undefined column 42703, insufficient privilege 42501), 3F000 (invalid schema),
// 22 (data exception: a value of the wrong type) and scan failures are the table's fault;
// everything else — connection refused, reset, timeout, the server shutting down — is
// the database being unavailable.
func (p *postgres) classify(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case len(pgErr.Code) == 5 && (pgErr.Code[:2] == "42" || pgErr.Code[:2] == "22" || pgErr.Code == "3F000"):
			return ErrSchema
		}
		return ErrUnavailable
	}
	var scanErr pgx.ScanArgError
	if errors.As(err, &scanErr) {
		return ErrSchema
	}
	return ErrUnavailable
}

func (p *postgres) close() { p.pool.Close() }
