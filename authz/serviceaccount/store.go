package serviceaccount

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// ErrUnavailable marks a lookup or ping that could not reach the database or timed out.
var ErrUnavailable = errors.New("service-account database unavailable")

// ErrSchema marks a database that answers but has no usable AgentOS service-account
// table: a missing schema, table or column, a column of another type, or a value that is
// not what AgentOS writes.
var ErrSchema = errors.New("service-account table missing or not AgentOS's")

// Account is a verified service account.
type Account struct {
	// ID is the row's id column.
	ID string
	// Name is the account name; the principal is "sa:" + Name.
	Name string
	// Scopes are the string entries of the row's scopes JSON list, in order and as
	// stored (an empty or padded string is kept: the decision pipeline leaves it out per
	// docs/CONTRACT.md §5). Entries that are not strings are dropped (they match nothing);
	// a NULL or non-list value gives none. The slice is the caller's own copy.
	Scopes []string
	// Expires is when the token stops working; the zero Time means never.
	Expires time.Time
}

// Principal is the account's identity as AgentOS attaches it to requests: "sa:<name>".
func (a Account) Principal() string { return "sa:" + a.Name }

// expired reports whether the account's token no longer works at now — AgentOS's
// ServiceAccount.is_expired: expires_at <= now, in whole epoch seconds.
func (a Account) expired(now time.Time) bool {
	return !a.Expires.IsZero() && a.Expires.Unix() <= now.Unix()
}

// row is the part of AgentOS's table that the lookup reads.
type row struct {
	id, name  string
	scopes    []byte
	expiresAt *int64
	revokedAt *int64
}

// backend is one database's read-only queries.
type backend interface {
	// lookup returns the row whose token_hash is hash; found is false when there is none.
	lookup(ctx context.Context, hash string) (r row, found bool, err error)
	// ping checks the connection and that the table and its columns exist.
	ping(ctx context.Context) error
	// classify sorts a driver error into ErrUnavailable or ErrSchema.
	classify(err error) error
	close()
}

// State is what the store last learned about the database, for /readyz.
type State struct {
	// Up is true when the last query answered.
	Up bool
	// Checked is when the last query finished; zero before the first one.
	Checked time.Time
	// Err is the last query's failure, nil when Up.
	Err error
}

// Store reads AgentOS's service-account table, read-only. It is safe for concurrent use.
type Store struct {
	be       backend
	dialect  Dialect
	where    string // redacted URL and table, for messages
	timeout  time.Duration
	observer Observer

	mu    sync.Mutex
	state State
}

// Open checks cfg and prepares the connection; it does not need the database to be up
// (a pool connects on first use), so the service can start, and serve JWTs, while the
// database is down. A missing table or schema is therefore found by [Store.Ping] or the
// first lookup, both of which return an error wrapping [ErrSchema] that names it.
// Errors name the field (`service_accounts.db_url`, …) and never contain a password.
// observer may be nil.
func Open(ctx context.Context, cfg Config, observer Observer) (*Store, error) {
	r, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if observer == nil {
		observer = NopObserver{}
	}
	s := &Store{dialect: r.loc.Dialect, timeout: r.queryTimeout, observer: observer}
	switch r.loc.Dialect {
	case DialectPostgres:
		s.be, err = openPostgres(ctx, r)
		s.where = fmt.Sprintf("table %s.%s at %s", r.schema, r.table, r.loc.Redacted)
	case DialectSQLite:
		s.be, err = openSQLite(r)
		s.where = fmt.Sprintf("table %s in %s", r.table, r.loc.Path)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Dialect says which database the store reads.
func (s *Store) Dialect() Dialect { return s.dialect }

// Ping checks that the database answers and has the table with AgentOS's columns; the
// error wraps [ErrUnavailable] or [ErrSchema]. It updates [Store.State].
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	start := time.Now()
	err := s.be.ping(ctx)
	if err != nil {
		err = s.wrap(err, "")
	}
	s.record(time.Since(start), err)
	return err
}

// State returns what the last query or ping learned; it never touches the database.
func (s *Store) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Close releases the connections. The store must not be used afterwards.
func (s *Store) Close() { s.be.close() }

// lookupResult is a row judged by AgentOS's rules.
type lookupResult struct {
	account Account
	reason  Reason // ReasonNone when the account is valid
}

// lookup reads the row of hash and judges it at now. The error wraps ErrUnavailable or
// ErrSchema and never contains hash.
func (s *Store) lookup(parent context.Context, hash string, now time.Time) (lookupResult, error) {
	ctx, cancel := context.WithTimeout(parent, s.timeout)
	defer cancel()
	start := time.Now()
	r, found, err := s.be.lookup(ctx, hash)
	var res lookupResult
	if err == nil {
		res, err = judge(r, found, now)
	}
	if err != nil {
		err = s.wrap(err, hash)
	}
	if err != nil && parent.Err() != nil {
		// The caller gave up (its request was cancelled): that says nothing about the
		// database, so neither the state nor the metrics learn from it.
		return res, err
	}
	s.record(time.Since(start), err)
	return res, err
}

// judge applies AgentOS's verification to a row (agno/os/service_accounts.py,
// ServiceAccountVerifier.verify): no row is unknown; revoked_at set is revoked, whatever
// its value; expires_at <= now is expired.
func judge(r row, found bool, now time.Time) (lookupResult, error) {
	if !found {
		return lookupResult{reason: ReasonUnknown}, nil
	}
	scopes, err := decodeScopes(r.scopes)
	if err != nil {
		return lookupResult{}, err
	}
	a := Account{ID: r.id, Name: r.name, Scopes: scopes}
	if r.expiresAt != nil {
		a.Expires = time.Unix(*r.expiresAt, 0).UTC()
	}
	switch {
	case r.revokedAt != nil:
		return lookupResult{account: a, reason: ReasonRevoked}, nil
	case a.expired(now):
		return lookupResult{account: a, reason: ReasonExpired}, nil
	}
	return lookupResult{account: a}, nil
}

// decodeScopes reads the scopes column: a JSON list whose string entries are kept in
// order. NULL gives no scopes, as AgentOS's ServiceAccount.from_dict does; a value that is
// not a list also gives none (fail closed: the account authenticates but holds nothing).
func decodeScopes(raw []byte) ([]string, error) {
	if raw == nil {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		var v any
		if json.Unmarshal(raw, &v) == nil {
			return nil, nil // valid JSON, not a list
		}
		return nil, fmt.Errorf("%w: the scopes column is not JSON", ErrSchema)
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		var s string
		if len(it) > 0 && it[0] == '"' && json.Unmarshal(it, &s) == nil {
			out = append(out, s)
		}
	}
	return out, nil
}

// wrap gives a driver error the store's sentinel and location, with hash masked: a
// database may quote a parameter back in its message (an invalid-input error on a
// token_hash column of another type would), and the hash must never leave the package.
func (s *Store) wrap(err error, hash string) error {
	kind := err
	if !errors.Is(err, ErrSchema) && !errors.Is(err, ErrUnavailable) {
		kind = s.be.classify(err)
	}
	sentinel := ErrUnavailable
	if errors.Is(kind, ErrSchema) {
		sentinel = ErrSchema
	}
	msg := err.Error()
	for _, prefix := range []string{ErrSchema.Error() + ": ", ErrUnavailable.Error() + ": "} {
		msg = strings.TrimPrefix(msg, prefix)
	}
	if hash != "" {
		msg = strings.ReplaceAll(msg, hash, "[token hash]")
	}
	return &storeError{sentinel: sentinel, msg: fmt.Sprintf("%s (%s): %s", sentinel, s.where, msg)}
}

// storeError carries only a sanitised message and its sentinel: the driver error is not
// kept, so nothing reachable through errors.Unwrap can hold the hash.
type storeError struct {
	sentinel error
	msg      string
}

func (e *storeError) Error() string { return e.msg }
func (e *storeError) Unwrap() error { return e.sentinel }

func (s *Store) record(elapsed time.Duration, err error) {
	s.mu.Lock()
	s.state = State{Up: err == nil, Checked: time.Now(), Err: err}
	s.mu.Unlock()
	s.observer.ObserveQuery(elapsed, err == nil)
}

// HashToken returns the lower-case hex SHA-256 of the whole token: the only form of a
// token AgentOS stores (agno/os/service_accounts.py, hash_token).
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
