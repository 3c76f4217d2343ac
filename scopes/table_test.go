package scopes

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
)

func mustCompile(t testing.TB, o Options) *Table {
	t.Helper()
	table, err := Compile(o)
	if err != nil {
		t.Fatalf("Compile(%+v): %v", o, err)
	}
	return table
}

// TestDefaultsMatchVendoredFile keeps the embedded table equal to the
// vendored agentos-routes.tsv as the manifest records it
// (test/testdata/SHA256SUMS), and to the shared original whenever a shared
// directory sits beside the repository.
func TestDefaultsMatchVendoredFile(t *testing.T) {
	root, err := conformance.Root()
	if err != nil {
		t.Fatal(err)
	}
	const rel = "scopes/agentos-routes.tsv"
	sums, err := conformance.Manifest(root)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := conformance.Sum([]byte(defaultRoutes)), sums[rel]; got != want {
		t.Errorf("embedded %s has SHA-256 %s, %s records %q", rel, got, conformance.ManifestPath, want)
	}
	onDisk, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	if string(onDisk) != defaultRoutes {
		t.Errorf("embedded table differs from %s: rebuild", rel)
	}
	shared, ok, err := conformance.SharedDir()
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Logf("no shared directory beside %s: compared with the manifest only", root)
		return
	}
	want, err := os.ReadFile(filepath.Join(shared, "agentos-routes.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != defaultRoutes {
		t.Errorf("embedded agentos-routes.tsv differs from %s: copy it into scopes/ again", filepath.Join(shared, "agentos-routes.tsv"))
	}
}

func TestDefaults(t *testing.T) {
	defaults := Defaults()
	if len(defaults) < 100 {
		t.Fatalf("Defaults() has %d routes, want the AgentOS table (over 100)", len(defaults))
	}
	// Spot checks against the file, first and last line included.
	for i, want := range map[int]Mapping{
		0:                 {Key: "GET /config", Scopes: []string{"config:read"}},
		7:                 {Key: "POST /agents/*/runs", Scopes: []string{"agents:run"}},
		len(defaults) - 1: {Key: "POST /components/*/configs/*/set-current", Scopes: []string{"components:write"}},
	} {
		if got := defaults[i]; got.Key != want.Key || !slices.Equal(got.Scopes, want.Scopes) {
			t.Errorf("Defaults()[%d] = %+v, want %+v", i, got, want)
		}
	}
	seen := map[string]bool{}
	for _, m := range defaults {
		if seen[m.Key] {
			t.Errorf("Defaults() repeats %q", m.Key)
		}
		seen[m.Key] = true
	}
	// A fresh slice each time.
	defaults[0].Key = "changed"
	if Defaults()[0].Key != "GET /config" {
		t.Error("Defaults() shares its slice between calls")
	}
	// The defaults compile, in order, all of them.
	rules := mustCompile(t, Options{}).Rules()
	if len(rules) != len(Defaults()) {
		t.Fatalf("Compile(defaults) has %d rules, want %d", len(rules), len(Defaults()))
	}
	for i, m := range Defaults() {
		if rules[i].Key != m.Key || rules[i].Custom {
			t.Errorf("rule %d = %+v, want default %q", i, rules[i], m.Key)
		}
	}
}

func TestParseRoutes(t *testing.T) {
	got, err := parseRoutes("# comment\nGET\t/a\ta:read,b:read\r\n\nPOST\t/b\t\nDELETE\t/c\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []Mapping{{Key: "GET /a", Scopes: []string{"a:read", "b:read"}}, {Key: "POST /b", Scopes: []string{}}, {Key: "DELETE /c", Scopes: []string{}}}
	if !slices.EqualFunc(got, want, func(a, b Mapping) bool { return a.Key == b.Key && slices.Equal(a.Scopes, b.Scopes) }) {
		t.Errorf("parseRoutes = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"GET /a a:read\n", "GET\t/a\tx\ty\n"} {
		if _, err := parseRoutes(bad); err == nil {
			t.Errorf("parseRoutes(%q) succeeded", bad)
		}
	}
}

// TestCompileMerge: docs/CONTRACT.md §5, a custom key equal to a default replaces it in
// place; new keys come after the defaults, in their order.
func TestCompileMerge(t *testing.T) {
	table := mustCompile(t, Options{Custom: []Mapping{
		{Key: "GET /zeta", Scopes: []string{"z:read"}},
		{Key: "GET /agents/*", Scopes: []string{"agents:read", "audit:read"}},
		{Key: "GET /alpha", Scopes: nil},
	}})
	rules := table.Rules()
	defaults := Defaults()
	if len(rules) != len(defaults)+2 {
		t.Fatalf("%d rules, want %d defaults + 2 new", len(rules), len(defaults))
	}
	i := slices.IndexFunc(defaults, func(m Mapping) bool { return m.Key == "GET /agents/*" })
	if got := rules[i]; got.Key != "GET /agents/*" || !got.Custom || !slices.Equal(got.Scopes, []string{"agents:read", "audit:read"}) {
		t.Errorf("rule %d = %+v, want the custom GET /agents/* in the default's place", i, got)
	}
	tail := rules[len(defaults):]
	if tail[0].Key != "GET /zeta" || tail[1].Key != "GET /alpha" || !tail[0].Custom {
		t.Errorf("new rules = %+v, want GET /zeta then GET /alpha", tail)
	}
	if tail[1].Scopes == nil || len(tail[1].Scopes) != 0 {
		t.Errorf("GET /alpha scopes = %#v, want an empty list", tail[1].Scopes)
	}
	if got := tail[0]; got.Method != "GET" || got.Pattern != "/zeta" {
		t.Errorf("rule = %+v, want method GET and pattern /zeta", got)
	}
	// Rules returns copies.
	rules[0].Scopes[0] = "changed"
	if table.Rules()[0].Scopes[0] == "changed" {
		t.Error("Rules() exposes the table's scopes")
	}
	if table.AdminScope() != DefaultAdminScope || table.Unmapped() != UnmappedAllow {
		t.Errorf("AdminScope, Unmapped = %q, %v; want the defaults", table.AdminScope(), table.Unmapped())
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want []string // each error's text, in order
		is   []error
	}{
		{
			name: "key without method",
			opts: Options{Custom: []Mapping{{Key: "/agents/x", Scopes: []string{"agents:read"}}}},
			want: []string{`"/agents/x": want "METHOD /path"`},
			is:   []error{ErrBadKey},
		},
		{
			name: "lower-case method",
			opts: Options{Custom: []Mapping{{Key: "get /x"}}},
			want: []string{`"get /x": method "get" must be upper-case letters`},
			is:   []error{ErrBadKey},
		},
		{
			name: "HEAD key",
			opts: Options{Custom: []Mapping{{Key: "HEAD /x", Scopes: []string{"x:read"}}}},
			want: []string{`"HEAD /x": HEAD is checked as GET: map GET /x instead`},
			is:   []error{ErrBadKey},
		},
		{
			name: "path not absolute, or two spaces",
			opts: Options{Custom: []Mapping{{Key: "GET x"}, {Key: "GET  /x"}, {Key: "GET"}}},
			want: []string{`"GET x": want "METHOD /path"`, `"GET  /x": want "METHOD /path"`, `"GET": want "METHOD /path"`},
			is:   []error{ErrBadKey, ErrBadKey, ErrBadKey},
		},
		{
			name: "control character in the path",
			opts: Options{Custom: []Mapping{{Key: "GET /a\tb"}}},
			want: []string{`"GET /a\tb": path holds a control character or invalid UTF-8`},
			is:   []error{ErrBadKey},
		},
		{
			name: "bad glob",
			opts: Options{Custom: []Mapping{{Key: "GET /x/[abc"}, {Key: "GET /x/{id"}}},
			want: []string{
				`"GET /x/[abc": syntax error in pattern: unterminated '[' at offset 3 in "/x/[abc"`,
				`"GET /x/{id": syntax error in pattern: unterminated '{' at offset 3 in "/x/{id"`,
			},
			is: []error{ErrBadPattern, ErrBadPattern},
		},
		{
			name: "bad scopes, each named by index",
			opts: Options{Custom: []Mapping{{Key: "GET /x", Scopes: []string{"agents:read", "a:b:c:d", "", "agents"}}}},
			want: []string{
				`"GET /x"[1]: scope "a:b:c:d" is not resource:action, resource:<id>:action or the admin scope`,
				`"GET /x"[2]: scope "" is not resource:action, resource:<id>:action or the admin scope`,
				`"GET /x"[3]: scope "agents" is not resource:action, resource:<id>:action or the admin scope`,
			},
			is: []error{ErrBadScope, ErrBadScope, ErrBadScope},
		},
		{
			name: "bad key and bad scope together",
			opts: Options{Custom: []Mapping{{Key: "HEAD /x", Scopes: []string{"nope"}}}},
			want: []string{
				`"HEAD /x": HEAD is checked as GET: map GET /x instead`,
				`"HEAD /x"[0]: scope "nope" is not resource:action, resource:<id>:action or the admin scope`,
			},
			is: []error{ErrBadKey, ErrBadScope},
		},
		{
			name: "duplicate key",
			opts: Options{Custom: []Mapping{{Key: "GET /x"}, {Key: "GET /x", Scopes: []string{"x:read"}}}},
			want: []string{`"GET /x": duplicate key`},
			is:   []error{ErrBadKey},
		},
		{
			name: "admin scope and policy",
			opts: Options{AdminScope: "agent os", Unmapped: Policy(3)},
			want: []string{
				`admin_scope: "agent os" must be non-empty, without white space or control characters`,
				`unmapped_routes: Policy(3) is neither allow nor deny`,
			},
			is: []error{ErrBadScope, ErrBadPolicy},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table, err := Compile(tt.opts)
			if err == nil || table != nil {
				t.Fatalf("Compile(%+v) = %v, nil; want errors", tt.opts, table)
			}
			var errs []error
			if joined, ok := err.(interface{ Unwrap() []error }); ok {
				errs = joined.Unwrap()
			} else {
				errs = []error{err}
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Compile errors =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for i, e := range errs {
				if !errors.Is(e, tt.is[i]) {
					t.Errorf("error %q is not %v", e, tt.is[i])
				}
				var me *MappingError
				var oe *OptionError
				if !errors.As(e, &me) && !errors.As(e, &oe) {
					t.Errorf("error %q is neither a *MappingError nor an *OptionError", e)
				}
			}
		})
	}
}

func TestMappingErrorFields(t *testing.T) {
	_, err := Compile(Options{Custom: []Mapping{{Key: "GET /x", Scopes: []string{"ok:read", "bad"}}}})
	var me *MappingError
	if !errors.As(err, &me) || me.Key != "GET /x" || me.Index != 1 {
		t.Fatalf("Compile error = %#v, want a MappingError for key GET /x, index 1", err)
	}
}

// TestCompileAccepts: every scope shape the grammar allows, and the admin scope
// whatever its shape.
func TestCompileAccepts(t *testing.T) {
	for _, o := range []Options{
		{Custom: []Mapping{{Key: "GET /x", Scopes: []string{"a:read", "a:*:read", "a:id:read", "system:read", DefaultAdminScope}}}},
		{AdminScope: "superuser", Custom: []Mapping{{Key: "GET /admin/*", Scopes: []string{"superuser"}}}},
		{Custom: []Mapping{{Key: "PUT /agents/{agent_id}/knowledge", Scopes: []string{"knowledge:write"}}}},
		{Custom: []Mapping{{Key: "GET /a b/[!x]?", Scopes: []string{}}}}, // a space is a path character
		{Unmapped: UnmappedDeny},
	} {
		if _, err := Compile(o); err != nil {
			t.Errorf("Compile(%+v): %v", o, err)
		}
	}
}
