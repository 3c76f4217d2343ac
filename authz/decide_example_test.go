package authz_test

import (
	"context"
	"fmt"

	"github.com/agentos-authz/agentos-authz/authz"
)

func ExampleAuthorizer_Decide() {
	env := map[string]string{"JWT_VERIFICATION_KEY": "an-hmac-secret-of-at-least-32-bytes!"}
	cfg, err := authz.Load([]byte("os_id: my-os\njwt:\n  algorithms: [HS256]\n"),
		func(k string) (string, bool) { v, ok := env[k]; return v, ok }, authz.LoadOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	a, err := authz.New(cfg, authz.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range []*authz.Request{
		{Method: "GET", Path: "/health"},
		{Method: "GET", Path: "/agents"},
		{Method: "GET", Path: "/agents/%2e%2e/config"},
	} {
		d := a.Decide(context.Background(), r)
		fmt.Printf("%s %s → %d %s %q\n", r.Method, r.Path, d.Status, d.Reason, d.Detail)
	}
	// Output:
	// GET /health → 200 allowed_excluded ""
	// GET /agents → 401 missing_credential "Authorization header missing"
	// GET /agents/%2e%2e/config → 400 malformed_path "Malformed request path"
}

func ExampleLoad() {
	_, err := authz.Load([]byte("unmapped_routes: block\njwt:\n  colour: blue\n"), nil, authz.LoadOptions{})
	fmt.Println(err)
	// Output:
	// jwt.colour: unknown field (line 3)
	// jwt: no credential source: set jwt.verification_keys, jwt.jwks_file or jwt.jwks_url (or JWT_VERIFICATION_KEY, JWT_JWKS_FILE, JWT_JWKS_URL), service_accounts.db_url (SERVICE_ACCOUNTS_DB_URL), or the deprecated security_key (OS_SECURITY_KEY)
	// unmapped_routes: "block" must be allow or deny
}
