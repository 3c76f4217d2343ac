package scopes_test

import (
	"fmt"
	"strings"

	"github.com/agentos-authz/agentos-authz/scopes"
)

func ExampleTable_Check() {
	// Compile once per configuration: the AgentOS defaults plus scope_mappings.
	table, err := scopes.Compile(scopes.Options{
		Custom: []scopes.Mapping{
			{Key: "GET /reports/{report_id}", Scopes: []string{"reports:read"}},
			{Key: "GET /public/stats", Scopes: []string{}},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Parse the caller's scopes once per request.
	caller := table.Parse([]string{"agents:web:run", "agents:a1:read", "agents:a2:read", "system:read"})
	for _, req := range []struct{ method, path string }{
		{"POST", "/agents/web/runs"},
		{"POST", "/agents/other/runs"},
		{"GET", "/agents"},
		{"HEAD", "/config"},
		{"GET", "/reports/q3"},
		{"GET", "/public/stats"},
		{"GET", "/no/such/route"},
	} {
		r := table.Check(req.method, req.path, &caller)
		switch {
		case r.Unmapped:
			fmt.Printf("%s %s: unmapped, allowed=%v\n", req.method, req.path, r.Allowed)
		case r.Listing:
			fmt.Printf("%s %s: listing of %s\n", req.method, req.path, strings.Join(r.AccessibleIDs, ", "))
		case r.Allowed:
			fmt.Printf("%s %s: allowed by %q %v\n", req.method, req.path, r.Rule.Key, r.Matched())
		default:
			fmt.Printf("%s %s: Required scope(s): %s\n", req.method, req.path, strings.Join(r.DeniedScopes(), ", "))
		}
	}
	// Output:
	// POST /agents/web/runs: allowed by "POST /agents/*/runs" [agents:run=agents:web:run]
	// POST /agents/other/runs: Required scope(s): agents:run
	// GET /agents: listing of a1, a2
	// HEAD /config: allowed by "GET /config" [config:read=system:read]
	// GET /reports/q3: Required scope(s): reports:read
	// GET /public/stats: allowed by "GET /public/stats" []
	// GET /no/such/route: unmapped, allowed=true
}

func ExampleCompile() {
	_, err := scopes.Compile(scopes.Options{
		Custom: []scopes.Mapping{
			{Key: "HEAD /status", Scopes: []string{"status:read"}},
			{Key: "GET /x", Scopes: []string{"x:read", "a:b:c:d"}},
		},
	})
	fmt.Println(err)
	// Output:
	// "HEAD /status": HEAD is checked as GET: map GET /status instead
	// "GET /x"[1]: scope "a:b:c:d" is not resource:action, resource:<id>:action or the admin scope
}
