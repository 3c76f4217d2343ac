package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

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
func openServiceAccounts(ctx context.Context, cfg *config, observer serviceaccount.Observer) (serviceAccounts, error) {
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

// saPingTimeout bounds the ping at start.
const saPingTimeout = 5 * time.Second

// openServiceAccountsLogged is openServiceAccounts for serve: the metrics
// observe the store, and a ping at start logs the database state (never
// fatal: service-account tokens get 503 until the database answers). The
// error is a configuration problem.
func openServiceAccountsLogged(ctx context.Context, cfg *config, metrics *envoy.Metrics, log *zap.Logger) (serviceAccounts, error) {
	if !cfg.ServiceAccounts.Enabled() {
		return serviceAccounts{}, nil
	}
	observer, err := metrics.ServiceAccountObserver()
	if err != nil {
		log.Warn("service-account metrics not registered", zap.Error(err))
		observer = nil
	}
	sa, err := openServiceAccounts(ctx, cfg, observer)
	if err != nil {
		return serviceAccounts{}, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, saPingTimeout)
	defer cancel()
	if err := sa.store.Ping(pingCtx); err != nil {
		log.Warn("service-account database not usable yet; service-account tokens get 503 until it answers (JWTs are not affected)",
			zap.String("database", sa.where), zap.Error(err))
	} else {
		log.Info("service-account database up", zap.String("database", sa.where))
	}
	return sa, nil
}
