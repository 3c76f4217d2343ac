// Package serviceaccount authenticates AgentOS service-account tokens (opaque
// `agno_pat_…` credentials) against the AgentOS database, read-only, as
// docs/CONTRACT.md §8 specifies.
//
// It owns:
//   - the database connection ([Open], [Store]): PostgreSQL through a pgx pool, or an
//     SQLite file through the pure-Go modernc.org/sqlite driver, both opened read-only,
//     with a short per-query timeout; the schema and table names from the configuration
//     are always quoted as identifiers, never spliced into SQL text;
//   - the lookup of a token by the lower-case hex SHA-256 of the whole token, with
//     AgentOS's semantics: a row passes when revoked_at is NULL and expires_at is NULL or
//     greater than now (AgentOS's ServiceAccount.is_expired is `expires_at <= now`);
//   - the [Authenticator] on top of the store: a bounded cache of verified tokens for
//     cache_ttl (expiry re-checked on every use), and a bounded per-client counter of
//     failed lookups that turns a failing token into [KindThrottled] past max_failures
//     within failure_window — a valid token is always looked up and never throttled, and
//     a database error is never counted;
//   - [Provision] and [Admin]: a separate read-write handle that creates AgentOS's table
//     (its exact column types per database) and inserts accounts, for `serve --dev` and
//     for tests.
//
// It must never: write through the [Store] (only SELECTs run there, in read-only
// sessions); put a token, or its hash, in an error, a [Result] or anything else it hands
// back (errors name the table and the database's own reason, with the hash masked);
// decide HTTP statuses or log (the decision pipeline renders a [Result]); read the
// environment or the clock on its own ([Authenticator.Authenticate] takes now).
package serviceaccount
