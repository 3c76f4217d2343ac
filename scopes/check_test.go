package scopes

import (
	"fmt"
	"slices"
	"testing"
)

// checkWant is what one decision must be. Nil slices are "none".
type checkWant struct {
	allowed  bool
	unmapped bool
	admin    bool
	listing  bool
	ids      []string
	rule     string   // the matched rule's key; "" = no rule
	denied   []string // DeniedScopes
	missing  []string
	matched  []string
	family   string
	id       string
}

type checkCase struct {
	name   string
	opts   Options
	scopes []string
	method string
	path   string // already normalised, as the caller gives it
	want   checkWant
}

var checkCases = []checkCase{
	// Global scopes.
	{
		name: "global scope", scopes: []string{"agents:read"}, method: "GET", path: "/agents",
		want: checkWant{allowed: true, rule: "GET /agents", matched: []string{"agents:read=agents:read"}, family: "agents"},
	},
	{
		name: "missing scope", scopes: []string{"sessions:read"}, method: "GET", path: "/agents",
		want: checkWant{rule: "GET /agents", denied: []string{"agents:read"}, missing: []string{"agents:read"}, family: "agents"},
	},
	{
		name: "global scope of another action", scopes: []string{"components:read"}, method: "PATCH", path: "/components/c1",
		want: checkWant{rule: "PATCH /components/*", denied: []string{"components:write"}, missing: []string{"components:write"}},
	},
	{
		name: "scopes are case-sensitive", scopes: []string{"AGENTS:READ", "agents:Read"}, method: "GET", path: "/agents/a1",
		want: checkWant{rule: "GET /agents/*", denied: []string{"agents:read"}, missing: []string{"agents:read"}, family: "agents", id: "a1"},
	},
	// Admin.
	{
		name: "admin grants everything", scopes: []string{"agent_os:admin"}, method: "POST", path: "/agents/a1/runs",
		want: checkWant{allowed: true, admin: true, rule: "POST /agents/*/runs", matched: []string{"agents:run=agent_os:admin"}, family: "agents", id: "a1"},
	},
	{
		name: "admin is not a listing", scopes: []string{"agents:a1:read", "agent_os:admin"}, method: "GET", path: "/agents",
		want: checkWant{allowed: true, admin: true, rule: "GET /agents", matched: []string{"agents:read=agent_os:admin"}, family: "agents"},
	},
	{
		name: "near-admin strings are not admin", scopes: []string{"admin", "agent_os", "agent_os:*:admin", "AGENT_OS:ADMIN"}, method: "GET", path: "/config",
		want: checkWant{rule: "GET /config", denied: []string{"config:read"}, missing: []string{"config:read"}},
	},
	{
		name: "custom admin scope", opts: Options{AdminScope: "platform:root"}, scopes: []string{"platform:root"}, method: "DELETE", path: "/components/c1",
		want: checkWant{allowed: true, admin: true, rule: "DELETE /components/*", matched: []string{"components:delete=platform:root"}},
	},
	{
		name: "default admin is ordinary under a custom admin", opts: Options{AdminScope: "platform:root"}, scopes: []string{"agent_os:admin"}, method: "GET", path: "/config",
		want: checkWant{rule: "GET /config", denied: []string{"config:read"}, missing: []string{"config:read"}},
	},
	{
		name:   "required admin scope is met only by the admin scope",
		opts:   Options{AdminScope: "platform:superuser", Custom: []Mapping{{Key: "GET /admin/*", Scopes: []string{"platform:superuser"}}}},
		scopes: []string{"platform:*:superuser", "platform:x:superuser"}, method: "GET", path: "/admin/users",
		want: checkWant{rule: "GET /admin/*", denied: []string{"platform:superuser"}, missing: []string{"platform:superuser"}},
	},
	// Per-resource and wildcard scopes.
	{
		name: "per-resource scope for its id", scopes: []string{"agents:web:read", "agents:web:run"}, method: "POST", path: "/agents/web/runs",
		want: checkWant{allowed: true, rule: "POST /agents/*/runs", matched: []string{"agents:run=agents:web:run"}, family: "agents", id: "web"},
	},
	{
		name: "per-resource scope for another id", scopes: []string{"agents:web:run"}, method: "POST", path: "/agents/other/runs",
		want: checkWant{rule: "POST /agents/*/runs", denied: []string{"agents:run"}, missing: []string{"agents:run"}, family: "agents", id: "other"},
	},
	{
		name: "per-resource scope deeper in the path", scopes: []string{"teams:t1:run"}, method: "POST", path: "/teams/t1/runs/r1/cancel",
		want: checkWant{allowed: true, rule: "POST /teams/*/runs/*/cancel", matched: []string{"teams:run=teams:t1:run"}, family: "teams", id: "t1"},
	},
	{
		name: "per-resource scope with another action", scopes: []string{"workflows:w1:read"}, method: "POST", path: "/workflows/w1/runs",
		want: checkWant{rule: "POST /workflows/*/runs", denied: []string{"workflows:run"}, missing: []string{"workflows:run"}, family: "workflows", id: "w1"},
	},
	{
		name: "wildcard scope", scopes: []string{"agents:*:run"}, method: "POST", path: "/agents/x/runs",
		want: checkWant{allowed: true, rule: "POST /agents/*/runs", matched: []string{"agents:run=agents:*:run"}, family: "agents", id: "x"},
	},
	{
		name: "wildcard vs global: both meet", scopes: []string{"teams:*:read", "teams:read"}, method: "GET", path: "/teams/t1",
		want: checkWant{allowed: true, rule: "GET /teams/*", matched: []string{"teams:read=teams:*:read"}, family: "teams", id: "t1"},
	},
	{
		name: "wildcard with another action", scopes: []string{"teams:*:read"}, method: "POST", path: "/teams/t1/runs",
		want: checkWant{rule: "POST /teams/*/runs", denied: []string{"teams:run"}, missing: []string{"teams:run"}, family: "teams", id: "t1"},
	},
	{
		name: "wildcard of another family", scopes: []string{"agents:*:run"}, method: "POST", path: "/teams/t1/runs",
		want: checkWant{rule: "POST /teams/*/runs", denied: []string{"teams:run"}, missing: []string{"teams:run"}, family: "teams", id: "t1"},
	},
	{
		name: "wildcard counts for any family", scopes: []string{"memories:*:delete"}, method: "DELETE", path: "/memories/m1",
		want: checkWant{allowed: true, rule: "DELETE /memories/*", matched: []string{"memories:delete=memories:*:delete"}},
	},
	{
		name: "per-resource scope does not count outside agents, teams, workflows", scopes: []string{"sessions:abc:read"}, method: "GET", path: "/sessions/abc",
		want: checkWant{rule: "GET /sessions/*", denied: []string{"sessions:read"}, missing: []string{"sessions:read"}},
	},
	{
		name: "family is anchored at the path start", scopes: []string{"agents:read", "agents:*:read", "knowledge:agents:read"}, method: "GET", path: "/knowledge/agents/sources",
		want: checkWant{rule: "GET /knowledge/*/sources", denied: []string{"knowledge:read"}, missing: []string{"knowledge:read"}},
	},
	{
		name: "id named like a family", scopes: []string{"agents:teams:read"}, method: "GET", path: "/agents/teams",
		want: checkWant{allowed: true, rule: "GET /agents/*", matched: []string{"agents:read=agents:teams:read"}, family: "agents", id: "teams"},
	},
	{
		name: "id with a space (decoded by the caller)", scopes: []string{"agents:sales bot:delete"}, method: "DELETE", path: "/agents/sales bot",
		want: checkWant{allowed: true, rule: "DELETE /agents/*", matched: []string{"agents:delete=agents:sales bot:delete"}, family: "agents", id: "sales bot"},
	},
	{
		name: "no path id: per-resource scopes cannot meet", scopes: []string{"workflows:w1:write"}, method: "POST", path: "/workflows",
		want: checkWant{rule: "POST /workflows", denied: []string{"workflows:write"}, missing: []string{"workflows:write"}, family: "workflows"},
	},
	{
		name:   "under /a2a/",
		opts:   Options{Custom: []Mapping{{Key: "POST /a2a/agents/*/v1/message:send", Scopes: []string{"agents:run"}}}},
		scopes: []string{"agents:bot:run"}, method: "POST", path: "/a2a/agents/bot/v1/message:send",
		want: checkWant{allowed: true, rule: "POST /a2a/agents/*/v1/message:send", matched: []string{"agents:run=agents:bot:run"}, family: "agents", id: "bot"},
	},
	{
		name:   "under /a2a/, another id",
		opts:   Options{Custom: []Mapping{{Key: "POST /a2a/agents/*/v1/message:send", Scopes: []string{"agents:run"}}}},
		scopes: []string{"agents:bot:run"}, method: "POST", path: "/a2a/agents/other/v1/message:send",
		want: checkWant{rule: "POST /a2a/agents/*/v1/message:send", denied: []string{"agents:run"}, missing: []string{"agents:run"}, family: "agents", id: "other"},
	},
	{
		name:   "no resource context: a family scope needs global or wildcard",
		opts:   Options{Custom: []Mapping{{Key: "POST /custom/endpoint", Scopes: []string{"agents:run"}}}},
		scopes: []string{"agents:a1:run"}, method: "POST", path: "/custom/endpoint",
		want: checkWant{rule: "POST /custom/endpoint", denied: []string{"agents:run"}, missing: []string{"agents:run"}},
	},
	// A required scope of another family than the path's is checked as written.
	{
		name:   "foreign family as written",
		opts:   Options{Custom: []Mapping{{Key: "PUT /agents/*/knowledge", Scopes: []string{"knowledge:write"}}}},
		scopes: []string{"agents:a1:write", "knowledge:a1:write"}, method: "PUT", path: "/agents/a1/knowledge",
		want: checkWant{rule: "PUT /agents/*/knowledge", denied: []string{"knowledge:write"}, missing: []string{"knowledge:write"}, family: "agents", id: "a1"},
	},
	{
		name:   "foreign family: wildcard meets",
		opts:   Options{Custom: []Mapping{{Key: "PUT /agents/*/knowledge", Scopes: []string{"knowledge:write"}}}},
		scopes: []string{"knowledge:*:write"}, method: "PUT", path: "/agents/a1/knowledge",
		want: checkWant{allowed: true, rule: "PUT /agents/*/knowledge", matched: []string{"knowledge:write=knowledge:*:write"}, family: "agents", id: "a1"},
	},
	{
		name:   "mixed families: all required, the 403 lists all",
		opts:   Options{Custom: []Mapping{{Key: "POST /workflows/*/schedule", Scopes: []string{"workflows:run", "schedules:write"}}}},
		scopes: []string{"workflows:w1:run"}, method: "POST", path: "/workflows/w1/schedule",
		want: checkWant{
			rule: "POST /workflows/*/schedule", denied: []string{"workflows:run", "schedules:write"}, missing: []string{"schedules:write"},
			matched: []string{"workflows:run=workflows:w1:run"}, family: "workflows", id: "w1",
		},
	},
	// Three-part required scopes (scope_mappings).
	{
		name:   "three-part required: exact",
		opts:   Options{Custom: []Mapping{{Key: "POST /agents/*/special", Scopes: []string{"agents:web:run"}}}},
		scopes: []string{"agents:web:run"}, method: "POST", path: "/agents/other/special",
		want: checkWant{allowed: true, rule: "POST /agents/*/special", matched: []string{"agents:web:run=agents:web:run"}, family: "agents", id: "other"},
	},
	{
		name:   "three-part required: the path's id does not count",
		opts:   Options{Custom: []Mapping{{Key: "POST /agents/*/special", Scopes: []string{"agents:web:run"}}}},
		scopes: []string{"agents:other:run"}, method: "POST", path: "/agents/other/special",
		want: checkWant{rule: "POST /agents/*/special", denied: []string{"agents:web:run"}, missing: []string{"agents:web:run"}, family: "agents", id: "other"},
	},
	{
		name:   "three-part required: global meets",
		opts:   Options{Custom: []Mapping{{Key: "POST /special", Scopes: []string{"agents:web:run"}}}},
		scopes: []string{"agents:run"}, method: "POST", path: "/special",
		want: checkWant{allowed: true, rule: "POST /special", matched: []string{"agents:web:run=agents:run"}},
	},
	{
		name:   "three-part required: wildcard meets",
		opts:   Options{Custom: []Mapping{{Key: "POST /special", Scopes: []string{"agents:web:run"}}}},
		scopes: []string{"agents:*:run"}, method: "POST", path: "/special",
		want: checkWant{allowed: true, rule: "POST /special", matched: []string{"agents:web:run=agents:*:run"}},
	},
	{
		name:   "three-part required of a non-resource family, legacy alias",
		opts:   Options{Custom: []Mapping{{Key: "GET /vault/{item}", Scopes: []string{"teams:vault:read", "config:read"}}}},
		scopes: []string{"teams:vault:read", "system:read"}, method: "GET", path: "/vault/k1",
		want: checkWant{allowed: true, rule: "GET /vault/{item}", matched: []string{"teams:vault:read=teams:vault:read", "config:read=system:read"}},
	},
	{
		name:   "required wildcard is met by global or wildcard only",
		opts:   Options{Custom: []Mapping{{Key: "POST /w", Scopes: []string{"agents:*:run"}}}},
		scopes: []string{"agents:x:run"}, method: "POST", path: "/w",
		want: checkWant{rule: "POST /w", denied: []string{"agents:*:run"}, missing: []string{"agents:*:run"}},
	},
	// Legacy alias.
	{
		name: "legacy system: caller scope", scopes: []string{"system:read"}, method: "GET", path: "/config",
		want: checkWant{allowed: true, rule: "GET /config", matched: []string{"config:read=system:read"}},
	},
	{
		name: "legacy system: wildcard", scopes: []string{"system:*:write"}, method: "POST", path: "/databases/pg/migrate",
		want: checkWant{allowed: true, rule: "POST /databases/*/migrate", matched: []string{"config:write=system:*:write"}},
	},
	{
		name:   "legacy system: required scope",
		opts:   Options{Custom: []Mapping{{Key: "GET /legacy/status", Scopes: []string{"system:read"}}}},
		scopes: []string{"config:read"}, method: "GET", path: "/legacy/status",
		want: checkWant{allowed: true, rule: "GET /legacy/status", matched: []string{"system:read=config:read"}},
	},
	{
		name: "legacy system: only config", scopes: []string{"system:read", "systems:read", "SYSTEM:read"}, method: "GET", path: "/registry",
		want: checkWant{rule: "GET /registry", denied: []string{"registry:read"}, missing: []string{"registry:read"}},
	},
	// Unknown scopes.
	{
		name: "unknown scopes match nothing", scopes: []string{"", "agents", "agents::read", "agents:a1:b:read", "*:read", "agents:*", "agents: read"}, method: "GET", path: "/agents/a1",
		want: checkWant{rule: "GET /agents/*", denied: []string{"agents:read"}, missing: []string{"agents:read"}, family: "agents", id: "a1"},
	},
	{
		name: "unknown scopes beside a good one", scopes: []string{"bogus", "agents:a1:read"}, method: "GET", path: "/agents/a1",
		want: checkWant{allowed: true, rule: "GET /agents/*", matched: []string{"agents:read=agents:a1:read"}, family: "agents", id: "a1"},
	},
	// Listings.
	{
		name: "listing filter", scopes: []string{"agents:a1:read", "agents:a2:read", "agents:a1:read", "teams:t1:read"}, method: "GET", path: "/agents",
		want: checkWant{
			allowed: true, listing: true, ids: []string{"a1", "a2"}, rule: "GET /agents", family: "agents",
			matched: []string{"agents:read=agents:a1:read agents:a2:read agents:a1:read"},
		},
	},
	{
		name: "listing filter with HEAD", scopes: []string{"workflows:w1:read"}, method: "HEAD", path: "/workflows",
		want: checkWant{allowed: true, listing: true, ids: []string{"w1"}, rule: "GET /workflows", family: "workflows", matched: []string{"workflows:read=workflows:w1:read"}},
	},
	{
		name: "listing filter counts only the route's action", scopes: []string{"teams:t1:read", "teams:*:run", "teams:t2:run"}, method: "GET", path: "/teams",
		want: checkWant{allowed: true, listing: true, ids: []string{"t1"}, rule: "GET /teams", family: "teams", matched: []string{"teams:read=teams:t1:read"}},
	},
	{
		name: "listing filter with empty result", scopes: []string{}, method: "GET", path: "/agents",
		want: checkWant{rule: "GET /agents", denied: []string{"agents:read"}, missing: []string{"agents:read"}, family: "agents"},
	},
	{
		name: "listing filter: other action only", scopes: []string{"agents:*:run", "agents:a1:run"}, method: "GET", path: "/agents",
		want: checkWant{rule: "GET /agents", denied: []string{"agents:read"}, missing: []string{"agents:read"}, family: "agents"},
	},
	{
		name: "listing filter: other family only", scopes: []string{"teams:t1:read"}, method: "GET", path: "/agents",
		want: checkWant{rule: "GET /agents", denied: []string{"agents:read"}, missing: []string{"agents:read"}, family: "agents"},
	},
	{
		name: "global scope: no filter", scopes: []string{"agents:a1:read", "agents:read"}, method: "GET", path: "/agents",
		want: checkWant{allowed: true, rule: "GET /agents", matched: []string{"agents:read=agents:read"}, family: "agents"},
	},
	{
		name: "wildcard scope: no filter", scopes: []string{"agents:a1:read", "agents:*:read"}, method: "GET", path: "/agents",
		want: checkWant{allowed: true, rule: "GET /agents", matched: []string{"agents:read=agents:*:read"}, family: "agents"},
	},
	{
		name: "POST listing not filtered", scopes: []string{"agents:a1:write"}, method: "POST", path: "/agents",
		want: checkWant{rule: "POST /agents", denied: []string{"agents:write"}, missing: []string{"agents:write"}, family: "agents"},
	},
	{
		name: "sub-collection not filtered", scopes: []string{"agents:a2:read"}, method: "GET", path: "/agents/a1/sessions",
		want: checkWant{rule: "GET /agents/*", denied: []string{"agents:read"}, missing: []string{"agents:read"}, family: "agents", id: "a1"},
	},
	{
		name:   "listing route of another family not filtered",
		opts:   Options{Custom: []Mapping{{Key: "GET /workflows", Scopes: []string{"knowledge:read"}}}},
		scopes: []string{"workflows:w1:read", "knowledge:k1:read"}, method: "GET", path: "/workflows",
		want: checkWant{rule: "GET /workflows", denied: []string{"knowledge:read"}, missing: []string{"knowledge:read"}, family: "workflows"},
	},
	{
		name:   "listing route with a three-part scope not filtered",
		opts:   Options{Custom: []Mapping{{Key: "GET /agents", Scopes: []string{"custom:agents:read"}}}},
		scopes: []string{"agents:a1:read"}, method: "GET", path: "/agents",
		want: checkWant{rule: "GET /agents", denied: []string{"custom:agents:read"}, missing: []string{"custom:agents:read"}, family: "agents"},
	},
	{
		name:   "no listing under /a2a/",
		opts:   Options{Custom: []Mapping{{Key: "GET /a2a/agents", Scopes: []string{"agents:read"}}}},
		scopes: []string{"agents:a1:read"}, method: "GET", path: "/a2a/agents",
		want: checkWant{rule: "GET /a2a/agents", denied: []string{"agents:read"}, missing: []string{"agents:read"}, family: "agents"},
	},
	{
		name:   "listing with two family scopes: the common ids",
		opts:   Options{Custom: []Mapping{{Key: "GET /agents", Scopes: []string{"agents:read", "agents:write"}}}},
		scopes: []string{"agents:a1:read", "agents:a2:read", "agents:a3:write", "agents:a2:write"}, method: "GET", path: "/agents",
		want: checkWant{
			allowed: true, listing: true, ids: []string{"a2"}, rule: "GET /agents", family: "agents",
			matched: []string{"agents:read=agents:a2:read", "agents:write=agents:a2:write"},
		},
	},
	{
		name:   "listing with two family scopes, no common id",
		opts:   Options{Custom: []Mapping{{Key: "GET /agents", Scopes: []string{"agents:read", "agents:write"}}}},
		scopes: []string{"agents:a1:read", "agents:a3:write"}, method: "GET", path: "/agents",
		want: checkWant{rule: "GET /agents", denied: []string{"agents:read", "agents:write"}, missing: []string{"agents:read", "agents:write"}, family: "agents"},
	},
	{
		name:   "listing with a foreign scope too",
		opts:   Options{Custom: []Mapping{{Key: "GET /teams", Scopes: []string{"teams:read", "audit:read"}}}},
		scopes: []string{"teams:t1:read"}, method: "GET", path: "/teams",
		want: checkWant{
			rule: "GET /teams", denied: []string{"teams:read", "audit:read"}, missing: []string{"audit:read"},
			matched: []string{"teams:read=teams:t1:read"}, family: "teams",
		},
	},
	// Trailing slash: the caller normalises; the engine takes the path as given.
	{
		name: "trailing slash removed by the caller", scopes: []string{"agents:a1:read"}, method: "GET", path: "/agents",
		want: checkWant{allowed: true, listing: true, ids: []string{"a1"}, rule: "GET /agents", family: "agents", matched: []string{"agents:read=agents:a1:read"}},
	},
	{
		name: "a path left with its trailing slash is not the collection", scopes: []string{"agents:a1:read"}, method: "GET", path: "/agents/",
		want: checkWant{rule: "GET /agents/*", denied: []string{"agents:read"}, missing: []string{"agents:read"}, family: "agents"},
	},
	// Route table precedence.
	{
		name:   "exact key wins over an earlier pattern",
		opts:   Options{Custom: []Mapping{{Key: "GET /agents/special", Scopes: []string{"special:read"}}}},
		scopes: []string{"agents:special:read", "agents:read"}, method: "GET", path: "/agents/special",
		want: checkWant{rule: "GET /agents/special", denied: []string{"special:read"}, missing: []string{"special:read"}, family: "agents", id: "special"},
	},
	{
		name: "first matching pattern in table order",
		opts: Options{Custom: []Mapping{
			{Key: "GET /reports/{report_id}", Scopes: []string{"reports:read"}},
			{Key: "GET /reports/{report_id}/export", Scopes: []string{"reports:read", "reports:export"}},
		}},
		scopes: []string{"reports:read"}, method: "GET", path: "/reports/r1/export",
		want: checkWant{allowed: true, rule: "GET /reports/{report_id}", matched: []string{"reports:read=reports:read"}},
	},
	{
		name: "custom mapping overrides a default in place",
		opts: Options{Custom: []Mapping{
			{Key: "GET /agents/*/audit", Scopes: []string{"audit:read"}},
			{Key: "GET /agents/*", Scopes: []string{"agents:read", "audit:read"}},
		}},
		scopes: []string{"audit:read"}, method: "GET", path: "/agents/a1/audit",
		want: checkWant{
			rule: "GET /agents/*", denied: []string{"agents:read", "audit:read"}, missing: []string{"agents:read"},
			matched: []string{"audit:read=audit:read"}, family: "agents", id: "a1",
		},
	},
	{
		name:   "custom mapping overrides a default to public",
		opts:   Options{Custom: []Mapping{{Key: "GET /config", Scopes: []string{}}}},
		scopes: nil, method: "GET", path: "/config",
		want: checkWant{allowed: true, rule: "GET /config"},
	},
	{
		name:   "route with no scope",
		opts:   Options{Custom: []Mapping{{Key: "GET /public/stats", Scopes: []string{}}}},
		scopes: []string{"bogus"}, method: "GET", path: "/public/stats",
		want: checkWant{allowed: true, rule: "GET /public/stats"},
	},
	{
		name:   "glob class miss is unmapped",
		opts:   Options{Custom: []Mapping{{Key: "GET /files/v?/[abc]*", Scopes: []string{"files:read"}}}},
		scopes: nil, method: "GET", path: "/files/v1/d.txt",
		want: checkWant{allowed: true, unmapped: true},
	},
	// Unmapped routes.
	{
		name: "unmapped allow", scopes: nil, method: "GET", path: "/totally/unmapped",
		want: checkWant{allowed: true, unmapped: true},
	},
	{
		name: "unmapped method", scopes: nil, method: "PUT", path: "/agents/a1",
		want: checkWant{allowed: true, unmapped: true, family: "agents", id: "a1"},
	},
	{
		name: "unmapped deny", opts: Options{Unmapped: UnmappedDeny}, scopes: []string{"agents:run"}, method: "POST", path: "/agents/a1/runs/r1/cancel/extra",
		want: checkWant{unmapped: true, family: "agents", id: "a1"},
	},
	{
		name: "unmapped deny, admin passes", opts: Options{Unmapped: UnmappedDeny}, scopes: []string{"agent_os:admin"}, method: "GET", path: "/totally/unmapped",
		want: checkWant{allowed: true, unmapped: true, admin: true},
	},
	{
		name: "unmapped deny, mapped route unaffected", opts: Options{Unmapped: UnmappedDeny}, scopes: []string{"agents:read"}, method: "HEAD", path: "/agents",
		want: checkWant{allowed: true, rule: "GET /agents", matched: []string{"agents:read=agents:read"}, family: "agents"},
	},
	// HEAD is GET.
	{
		name: "HEAD checked as GET", scopes: []string{"config:read"}, method: "HEAD", path: "/config",
		want: checkWant{allowed: true, rule: "GET /config", matched: []string{"config:read=config:read"}},
	},
	{
		name: "HEAD of a run route is GET of it", scopes: []string{"teams:run"}, method: "HEAD", path: "/teams/t1/runs",
		want: checkWant{rule: "GET /teams/*", denied: []string{"teams:read"}, missing: []string{"teams:read"}, family: "teams", id: "t1"},
	},
	{
		name: "HEAD per-resource", scopes: []string{"agents:x:read"}, method: "HEAD", path: "/agents/x",
		want: checkWant{allowed: true, rule: "GET /agents/*", matched: []string{"agents:read=agents:x:read"}, family: "agents", id: "x"},
	},
	{
		name: "methods are case-sensitive", scopes: nil, method: "get", path: "/config",
		want: checkWant{allowed: true, unmapped: true},
	},
}

func TestCheck(t *testing.T) {
	for _, tt := range checkCases {
		t.Run(tt.name, func(t *testing.T) {
			table := mustCompile(t, tt.opts)
			set := table.Parse(tt.scopes)
			r := table.Check(tt.method, tt.path, &set)
			call := fmt.Sprintf("Check(%s %s, %q)", tt.method, tt.path, tt.scopes)
			got := checkWant{
				allowed: r.Allowed, unmapped: r.Unmapped, admin: r.Admin, listing: r.Listing, ids: r.AccessibleIDs,
				denied: r.DeniedScopes(), missing: r.Missing(), matched: r.Matched(), family: r.Family, id: r.ID,
			}
			if r.Rule != nil {
				got.rule = r.Rule.Key
			}
			if !equalWant(got, tt.want) {
				t.Errorf("%s =\n  %+v\nwant\n  %+v", call, got, tt.want)
			}
			// Invariants of every decision.
			if r.Unmapped != (r.Rule == nil) {
				t.Errorf("%s: Unmapped %v with rule %v", call, r.Unmapped, r.Rule)
			}
			if r.Listing != (len(r.AccessibleIDs) > 0) || (r.Listing && !r.Allowed) {
				t.Errorf("%s: listing %v, allowed %v, ids %q", call, r.Listing, r.Allowed, r.AccessibleIDs)
			}
			if !r.Allowed && !r.Unmapped && len(r.Missing()) == 0 {
				t.Errorf("%s: denied with nothing missing", call)
			}
		})
	}
}

func equalWant(a, b checkWant) bool {
	return a.allowed == b.allowed && a.unmapped == b.unmapped && a.admin == b.admin && a.listing == b.listing &&
		slices.Equal(a.ids, b.ids) && a.rule == b.rule && slices.Equal(a.denied, b.denied) &&
		slices.Equal(a.missing, b.missing) && slices.Equal(a.matched, b.matched) && a.family == b.family && a.id == b.id
}

func TestGrants(t *testing.T) {
	table := mustCompile(t, Options{Custom: []Mapping{{Key: "GET /teams", Scopes: []string{"teams:read", "audit:read"}}}})
	set := table.Parse([]string{"teams:t1:read", "teams:t2:read", "audit:read"})
	r := table.Check("GET", "/teams", &set)
	want := []Grant{
		{Required: "teams:read", By: "teams:t1:read teams:t2:read", Listing: true},
		{Required: "audit:read", By: "audit:read"},
	}
	if got := r.Grants(); !slices.Equal(got, want) {
		t.Errorf("Grants() = %+v, want %+v", got, want)
	}
	if !r.Allowed || !slices.Equal(r.AccessibleIDs, []string{"t1", "t2"}) {
		t.Errorf("Check(GET /teams) = %+v, want a listing of t1, t2", r)
	}
	if r.Missing() != nil || r.DeniedScopes() != nil {
		t.Errorf("allowed, yet Missing() = %q, DeniedScopes() = %q", r.Missing(), r.DeniedScopes())
	}

	// The Result keeps its own copy of the caller: a later Parse into the same
	// variable does not change the explanation.
	set = table.Parse([]string{"audit:read"})
	if got := r.Grants(); !slices.Equal(got, want) {
		t.Errorf("after reusing the Set variable, Grants() = %+v, want %+v", got, want)
	}
}

func TestCheckNil(t *testing.T) {
	table := mustCompile(t, Options{})
	if r := table.Check("GET", "/agents", nil); r.Allowed || r.Rule == nil || r.Rule.Key != "GET /agents" {
		t.Errorf("Check with a nil Set = %+v, want a denial by GET /agents", r)
	}
	var nilTable *Table
	if r := nilTable.Check("GET", "/totally/unmapped", nil); r.Allowed || r.Grants() != nil || r.Missing() != nil {
		t.Errorf("nil Table Check = %+v, want the zero (denying) Result", r)
	}
	var zero Result
	if zero.Allowed || zero.Grants() != nil || zero.Matched() != nil || zero.DeniedScopes() != nil {
		t.Errorf("zero Result = %+v, want a denial with no explanation", zero)
	}
}

func TestResourceOf(t *testing.T) {
	tests := []struct {
		path, fam, id string
		collection    bool
	}{
		{path: "/agents", fam: "agents", collection: true},
		{path: "/teams", fam: "teams", collection: true},
		{path: "/workflows", fam: "workflows", collection: true},
		{path: "/agents/a1", fam: "agents", id: "a1"},
		{path: "/agents/a1/runs/r1", fam: "agents", id: "a1"},
		{path: "/a2a/agents/a1/v1/message:send", fam: "agents", id: "a1"},
		{path: "/a2a/teams", fam: "teams"},
		{path: "/a2a/message/send"},
		{path: "/a2a"},
		{path: "/sessions/s1"},
		{path: "/knowledge/agents/sources"},
		{path: "/agentsx/a1"},
		{path: "/"},
		{path: ""},
		{path: "agents/a1"},
		// An a2a interface mounted elsewhere names resources too.
		{path: "/x/a2a/agents/a1/v1/message:send", fam: "agents", id: "a1"},
		{path: "/x/a2a/agents", fam: "agents"},
		{path: "/x/a2ab/agents/a1"},
	}
	tab, err := Compile(Options{Interfaces: []Interface{{Type: InterfaceA2A, Prefix: "/x/a2a"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		fam, id, collection := tab.resourceOf(tt.path)
		if fam != tt.fam || id != tt.id || collection != tt.collection {
			t.Errorf("resourceOf(%q) = %q, %q, %v; want %q, %q, %v", tt.path, fam, id, collection, tt.fam, tt.id, tt.collection)
		}
	}
}
