package serviceaccount_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/agentos-authz/agentos-authz/authz/serviceaccount"
)

// A table in a SQLite file, as `serve --dev` makes one, read back through the read-only
// store by the authenticator the decision pipeline calls.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sa-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	cfg := serviceaccount.Config{URL: "sqlite:///" + filepath.Join(dir, "agno.db")}

	token, _ := serviceaccount.NewToken()
	if err := serviceaccount.Provision(ctx, cfg, serviceaccount.Seed{
		Name: "ci-bot", Token: token, Scopes: []string{"agents:run", "sessions:read"},
	}); err != nil {
		panic(err)
	}

	store, err := serviceaccount.Open(ctx, cfg, nil)
	if err != nil {
		panic(err)
	}
	defer store.Close()
	authn, err := serviceaccount.NewAuthenticator(store, serviceaccount.DefaultOptions(), nil)
	if err != nil {
		panic(err)
	}

	now := time.Now()
	res := authn.Authenticate(ctx, token, "192.0.2.10", now)
	fmt.Println(res.Kind, res.Account.Principal(), res.Account.Scopes)
	res = authn.Authenticate(ctx, token, "192.0.2.10", now.Add(time.Second))
	fmt.Println(res.Kind)
	res = authn.Authenticate(ctx, "agno_pat_guessed", "192.0.2.10", now)
	fmt.Println(res.Kind, res.Reason)
	// Output:
	// ok sa:ci-bot [agents:run sessions:read]
	// cached
	// invalid unknown
}
