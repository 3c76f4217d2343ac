package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/authz/serviceaccount"
	"github.com/agentos-authz/agentos-authz/envoy"
)

// serviceAccounts is the open connection to AgentOS's service-account table
// (docs/CONTRACT.md §8) and the authenticator on it; the zero value means
// service accounts are not configured.
type serviceAccounts struct {
	store *serviceaccount.Store
	authn *serviceaccount.Authenticator
	where string // the table and database, password masked
}

// openServiceAccounts opens the store and its authenticator when cfg has a
// service_accounts.db_url. It does not need the database to be up (the
// service starts, and serves JWTs, while it is down). observer may be nil.
// Errors name the field and never hold the URL's password.
func openServiceAccounts(ctx context.Context, cfg *authz.Config, observer serviceaccount.Observer) (serviceAccounts, error) {
	c := &cfg.ServiceAccounts
	if !c.Enabled() {
		return serviceAccounts{}, nil
	}
	store, err := serviceaccount.Open(ctx, c.StoreConfig(), observer)
	if err != nil {
		return serviceAccounts{}, err
	}
	authn, err := serviceaccount.NewAuthenticator(store, c.Options(), observer)
	if err != nil {
		store.Close()
		return serviceAccounts{}, err
	}
	return serviceAccounts{store: store, authn: authn, where: c.Where()}, nil
}

// close releases the connections; safe on the zero value.
func (sa serviceAccounts) close() {
	if sa.store != nil {
		sa.store.Close()
	}
}

// condServiceAccounts is the /readyz condition of the service-account
// database.
const condServiceAccounts = "service_accounts_database"

// readyzCondition is the database state for /readyz: information only, it
// always holds (the service is ready whatever the database does: JWT
// traffic never depends on it).
func (sa serviceAccounts) readyzCondition() (bool, string) {
	if sa.store == nil {
		return true, "service accounts not configured"
	}
	st := sa.store.State()
	switch {
	case st.Checked.IsZero():
		return true, "database not queried yet (" + sa.where + ")"
	case st.Up:
		return true, "database up (" + sa.where + ")"
	}
	what := "database DOWN"
	if errors.Is(st.Err, serviceaccount.ErrSchema) {
		what = "table NOT USABLE (check service_accounts.db_schema, table and the role's grants)"
	}
	return true, fmt.Sprintf("%s at %s: %v (service-account tokens get 503)",
		what, st.Checked.UTC().Format("2006-01-02T15:04:05Z"), st.Err)
}

// saPingTimeout bounds the ping after opening.
const saPingTimeout = 5 * time.Second

// liveServiceAccounts is serve's service-account database (docs/CONTRACT.md
// §8): opened at start, replaced by a reload whose service_accounts section
// changed (prepare, then commit or abort around the authorizer's Reload).
// open, the reloads and close run one at a time (serve, then the reload
// goroutine, then serve once that goroutine ended); /readyz and authn may
// be called concurrently with them.
type liveServiceAccounts struct {
	metrics *envoy.Metrics
	log     *zap.Logger
	ready   *readyConditions
	// observer counts the queries of every store: the metrics register
	// once, so it is made for the first store opened and kept (nil when
	// they could not be registered).
	observer     serviceaccount.Observer
	observerMade bool
	// running is the section cur was opened from.
	running authz.ServiceAccountsConfig
	cur     atomic.Pointer[serviceAccounts]
}

func newLiveServiceAccounts(metrics *envoy.Metrics, log *zap.Logger, ready *readyConditions) *liveServiceAccounts {
	l := &liveServiceAccounts{metrics: metrics, log: log, ready: ready}
	l.cur.Store(&serviceAccounts{})
	return l
}

// open opens the database of cfg, if any; the error is a configuration
// problem.
func (l *liveServiceAccounts) open(ctx context.Context, cfg *authz.Config) error {
	sa, err := l.openLogged(ctx, cfg)
	if err != nil {
		return err
	}
	l.running = cfg.ServiceAccounts
	l.cur.Store(&sa)
	return nil
}

// authn is the current authenticator (nil when not configured).
func (l *liveServiceAccounts) authn() *serviceaccount.Authenticator { return l.cur.Load().authn }

// registerCondition registers the /readyz condition when a database is
// configured; commit adds or removes it as the setting changes.
func (l *liveServiceAccounts) registerCondition() {
	if l.cur.Load().store != nil {
		l.ready.register(condServiceAccounts, l.readyzCondition)
	}
}

// readyzCondition follows the current database.
func (l *liveServiceAccounts) readyzCondition() (bool, string) { return l.cur.Load().readyzCondition() }

// openLogged opens the database of cfg (nothing when not configured) with
// the metrics observing it, and pings it to log its state (never fatal:
// service-account tokens get 503 until the database answers).
func (l *liveServiceAccounts) openLogged(ctx context.Context, cfg *authz.Config) (serviceAccounts, error) {
	if !cfg.ServiceAccounts.Enabled() {
		return serviceAccounts{}, nil
	}
	if !l.observerMade {
		l.observerMade = true
		observer, err := l.metrics.ServiceAccountObserver()
		if err != nil {
			l.log.Warn("service-account metrics not registered", zap.Error(err))
		} else {
			l.observer = observer
		}
	}
	sa, err := openServiceAccounts(ctx, cfg, l.observer)
	if err != nil {
		return serviceAccounts{}, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, saPingTimeout)
	defer cancel()
	if err := sa.store.Ping(pingCtx); err != nil {
		l.log.Warn("service-account database not usable yet; service-account tokens get 503 until it answers (JWTs are not affected)",
			zap.String("database", sa.where), zap.Error(err))
	} else {
		l.log.Info("service-account database up", zap.String("database", sa.where))
	}
	return sa, nil
}

// saChange is what a reload does to the service-account database.
type saChange struct {
	next serviceAccounts // what serves once the reload is committed
	// reopened: next.store is not the running one (opened for the reload,
	// or none when disabled).
	reopened bool
}

// prepare readies next's service-account settings without touching the
// running ones: a new store and authenticator when the database settings
// changed (db_url, db_schema, table; enabled or disabled), a new
// authenticator on the running store when only its options did (cache_ttl,
// max_failures, failure_window), else the running ones. The error is a
// configuration problem; nothing is left open then.
func (l *liveServiceAccounts) prepare(ctx context.Context, next *authz.Config) (saChange, error) {
	cur := *l.cur.Load()
	nc := &next.ServiceAccounts
	switch {
	case (nc.Enabled() || l.running.Enabled()) && nc.StoreConfig() != l.running.StoreConfig():
		sa, err := l.openLogged(ctx, next)
		if err != nil {
			return saChange{}, err
		}
		return saChange{next: sa, reopened: true}, nil
	case nc.Enabled() && nc.Options() != l.running.Options():
		authn, err := serviceaccount.NewAuthenticator(cur.store, nc.Options(), l.observer)
		if err != nil {
			return saChange{}, &authz.FieldError{Field: "service_accounts", Err: err}
		}
		cur.authn = authn
	}
	return saChange{next: cur}, nil
}

// abort closes what prepare opened for a reload that failed.
func (l *liveServiceAccounts) abort(c saChange) {
	if c.reopened {
		c.next.close()
	}
}

// commit makes c current once the authorizer serves with it (next is the
// configuration reloaded): the /readyz condition follows, and a replaced
// store is closed. Checks still on it finish their query (the drivers'
// Close lets an acquired connection end it); one that finds it closed is
// decided again on the new snapshot (authz.ReloadOptions).
func (l *liveServiceAccounts) commit(next *authz.Config, c saChange) {
	l.running = next.ServiceAccounts
	old := l.cur.Load()
	if !c.reopened {
		l.cur.Store(&c.next)
		return
	}
	switch {
	case c.next.store != nil && old.store == nil:
		l.cur.Store(&c.next)
		l.ready.register(condServiceAccounts, l.readyzCondition)
		l.log.Info("service-account database opened", zap.String("database", c.next.where))
	case c.next.store == nil && old.store != nil:
		l.ready.remove(condServiceAccounts)
		l.cur.Store(&c.next)
		l.log.Info("service-account database closed: service accounts disabled", zap.String("database", old.where))
	default:
		l.cur.Store(&c.next)
		l.log.Info("service-account database reopened", zap.String("database", c.next.where), zap.String("previous", old.where))
	}
	old.close()
}

// close closes the current database.
func (l *liveServiceAccounts) close() { l.cur.Load().close() }
