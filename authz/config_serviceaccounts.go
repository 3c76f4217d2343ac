package authz

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/agentos-authz/agentos-authz/authz/serviceaccount"
)

// envServiceAccountsDBURL sets service_accounts.db_url (docs/CONTRACT.md §3).
const envServiceAccountsDBURL = "SERVICE_ACCOUNTS_DB_URL"

// ServiceAccountsConfig is the service_accounts: section (docs/CONTRACT.md
// §4, §8): where AgentOS keeps its service accounts, and how long their
// verifications are trusted. A nil pointer field takes its default.
type ServiceAccountsConfig struct {
	// DBURL is AgentOS's database: postgresql://… or sqlite:///path. ""
	// disables service accounts. It may hold a password: it is never
	// printed (serviceaccount.Location.Redacted is).
	DBURL string `yaml:"db_url"`
	// DBSchema is the Postgres schema (default ai); ignored for SQLite.
	DBSchema string `yaml:"db_schema"`
	// Table is the table name (default agno_service_accounts).
	Table string `yaml:"table"`
	// CacheTTL is how long a verified token is served without a lookup
	// (default 30s; 0 disables the cache).
	CacheTTL *Duration `yaml:"cache_ttl"`
	// MaxFailures is the number of failed lookups per client address per
	// FailureWindow before 429 (default 20; 0 disables throttling).
	MaxFailures *int `yaml:"max_failures"`
	// FailureWindow is the window of MaxFailures (default 60s).
	FailureWindow *Duration `yaml:"failure_window"`
}

// Enabled reports whether service accounts are configured (a db_url).
func (c *ServiceAccountsConfig) Enabled() bool { return c.DBURL != "" }

// StoreConfig is the serviceaccount.Config of the section.
func (c *ServiceAccountsConfig) StoreConfig() serviceaccount.Config {
	return serviceaccount.Config{URL: c.DBURL, Schema: c.DBSchema, Table: c.Table}
}

// Options is the serviceaccount.Options of the section: the package's
// defaults with what the file sets.
func (c *ServiceAccountsConfig) Options() serviceaccount.Options {
	o := serviceaccount.DefaultOptions()
	if c.CacheTTL != nil {
		o.CacheTTL = c.CacheTTL.Duration
	}
	if c.MaxFailures != nil {
		o.MaxFailures = *c.MaxFailures
	}
	if c.FailureWindow != nil {
		o.FailureWindow = c.FailureWindow.Duration
	}
	return o
}

// Where describes the database for logs and /readyz, its password masked.
func (c *ServiceAccountsConfig) Where() string {
	loc, err := serviceaccount.ParseURL(c.DBURL)
	if err != nil {
		return "(invalid db_url)"
	}
	if loc.Dialect == serviceaccount.DialectSQLite {
		return fmt.Sprintf("table %s in %s", orDefault(c.Table, serviceaccount.DefaultTable), loc.Path)
	}
	return fmt.Sprintf("table %s.%s at %s", orDefault(c.DBSchema, serviceaccount.DefaultSchema),
		orDefault(c.Table, serviceaccount.DefaultTable), loc.Redacted)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// check validates the section without touching the database; each problem
// names its field. The URL's password never appears in a message
// (serviceaccount.ParseURL's errors hold none, and the URL is not quoted).
func (c *ServiceAccountsConfig) check() []error {
	var errs []error
	fail := func(field string, err error) {
		errs = append(errs, &FieldError{Field: "service_accounts." + field, Err: err})
	}
	if c.DBURL != "" {
		if strings.TrimSpace(c.DBURL) != c.DBURL {
			fail("db_url", errors.New("has leading or trailing whitespace"))
		} else if _, err := serviceaccount.ParseURL(c.DBURL); err != nil {
			fail("db_url", err)
		}
	}
	for _, id := range []struct{ field, value string }{{"db_schema", c.DBSchema}, {"table", c.Table}} {
		if err := checkSQLIdentifier(id.value); err != nil {
			fail(id.field, err)
		}
	}
	if c.CacheTTL != nil && c.CacheTTL.Duration < 0 {
		fail("cache_ttl", errors.New("must not be negative (0 disables the cache)"))
	}
	if c.MaxFailures != nil && (*c.MaxFailures < 0 || *c.MaxFailures > serviceaccount.MaxMaxFailures) {
		fail("max_failures", fmt.Errorf("%d is not within 0..%d (0 disables throttling)", *c.MaxFailures, serviceaccount.MaxMaxFailures))
	}
	if c.FailureWindow != nil && c.FailureWindow.Duration <= 0 {
		fail("failure_window", errors.New("must be positive"))
	}
	if c.CacheTTL != nil && c.CacheTTL.Duration > 24*time.Hour {
		// A day-long cache makes revocation meaningless (docs/CONTRACT.md §8:
		// revocation takes effect within cache_ttl).
		fail("cache_ttl", fmt.Errorf("%v is longer than 24h: a revoked token would keep working that long", c.CacheTTL.Duration))
	}
	return errs
}

// checkSQLIdentifier accepts a schema or table name the databases hold as a
// quoted identifier ("" is the default). PostgreSQL truncates names past 63
// bytes, which would read another table than the one configured.
func checkSQLIdentifier(s string) error {
	switch {
	case s == "":
		return nil
	case strings.ContainsRune(s, 0):
		return errors.New("contains a NUL byte")
	case !utf8.ValidString(s):
		return errors.New("is not valid UTF-8")
	case len(s) > 63:
		return fmt.Errorf("is %d bytes, longer than the 63 a PostgreSQL identifier holds", len(s))
	case strings.TrimSpace(s) != s:
		return errors.New("has leading or trailing whitespace")
	}
	return nil
}
