package scopes

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// refGlobValid and refGlobMatch are the plain reference fnmatch the compiled
// Glob is fuzzed against: a direct recursive reading of the pattern over runes,
// written independently of glob.go (memoised only so that a pattern of many
// stars stays fast).

func refGlobValid(pattern string) bool {
	if !utf8.ValidString(pattern) {
		return false
	}
	p := []rune(pattern)
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '[':
			_, end, ok := refClass(p, i)
			if !ok {
				return false
			}
			i = end - 1
		case '{':
			end, ok := refParam(p, i)
			if !ok {
				return false
			}
			i = end - 1
		}
	}
	return true
}

func refGlobMatch(pattern, s string) bool {
	p, r := []rune(pattern), []rune(s)
	memo := make(map[[2]int]bool)
	var match func(i, j int) bool
	match = func(i, j int) bool {
		key := [2]int{i, j}
		if v, ok := memo[key]; ok {
			return v
		}
		var v bool
		switch {
		case i == len(p):
			v = j == len(r)
		case p[i] == '*':
			for k := j; k <= len(r) && !v; k++ {
				v = match(i+1, k)
			}
		case p[i] == '{':
			end, _ := refParam(p, i)
			for k := j; k <= len(r) && !v; k++ {
				v = match(end, k)
			}
		case p[i] == '?':
			v = j < len(r) && match(i+1, j+1)
		case p[i] == '[':
			in, end, _ := refClass(p, i)
			v = j < len(r) && in(r[j]) && match(end, j+1)
		default:
			v = j < len(r) && p[i] == r[j] && match(i+1, j+1)
		}
		memo[key] = v
		return v
	}
	return match(0, 0)
}

// refClass reads the class opening at p[i] == '[': a membership test, the index
// after its ']', and whether it is terminated.
func refClass(p []rune, i int) (func(rune) bool, int, bool) {
	j := i + 1
	negate := false
	if j < len(p) && p[j] == '!' {
		negate = true
		j++
	}
	type span struct{ lo, hi rune }
	var spans []span
	for first := true; ; first = false {
		if j >= len(p) {
			return nil, 0, false
		}
		if p[j] == ']' && !first {
			break
		}
		if j+2 < len(p) && p[j+1] == '-' && p[j+2] != ']' {
			spans = append(spans, span{p[j], p[j+2]})
			j += 3
			continue
		}
		spans = append(spans, span{p[j], p[j]})
		j++
	}
	in := func(c rune) bool {
		for _, sp := range spans {
			if sp.lo <= c && c <= sp.hi {
				return !negate
			}
		}
		return negate
	}
	return in, j + 1, true
}

// refParam reads the parameter opening at p[i] == '{' and returns the index
// after its '}'.
func refParam(p []rune, i int) (int, bool) {
	for j := i + 1; j < len(p); j++ {
		switch p[j] {
		case '}':
			return j + 1, j > i+1
		case '/', '{', '[':
			return 0, false
		}
	}
	return 0, false
}

func FuzzGlob(f *testing.F) {
	for _, seed := range []struct{ pattern, s string }{
		{"/agents/*", "/agents/a1/runs"}, // star crosses '/'
		{"/agents/*/runs/*/cancel", "/agents/a/runs/r/cancel"},
		{"/files/v?/[abc]*", "/files/v1/b.txt"}, // '?' and a class
		{"/x/[!a-c]", "/x/d"},                   // negated range
		{"/x/[]a]", "/x/]"},                     // leading ']' is a member
		{"/x/[a-]", "/x/-"},                     // trailing '-' is literal
		{"/x/[z-a]", "/x/m"},                    // reversed range
		{"/reports/{id}/export", "/reports/r/export"},
		{"*a*b*c", "xxaxxbxxbxc"}, // backtracking
		{"/x/[abc", "/x/a"},       // unterminated class
		{"/x/{id", "/x/1"},        // unterminated parameter
		{"/é/[é-ë]?", "/é/ëü"},    // runes, not bytes
	} {
		f.Add(seed.pattern, seed.s)
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 256 || len(s) > 512 {
			t.Skip("reference is quadratic")
		}
		g, err := CompileGlob(pattern)
		if valid := refGlobValid(pattern); (err == nil) != valid {
			t.Fatalf("CompileGlob(%q) error = %v, reference says valid = %v", pattern, err, valid)
		}
		if err != nil {
			return
		}
		if !utf8.ValidString(s) {
			// A normalised path is valid UTF-8: Match must merely not panic.
			_ = g.Match(s)
			return
		}
		if got, want := g.Match(s), refGlobMatch(pattern, s); got != want {
			t.Fatalf("CompileGlob(%q).Match(%q) = %v, reference says %v", pattern, s, got, want)
		}
		if g.Literal() && !g.Match(pattern) {
			t.Fatalf("literal CompileGlob(%q) does not match itself", pattern)
		}
	})
}

func FuzzParseScope(f *testing.F) {
	for _, seed := range []string{
		"agents:read",          // global
		"agents:*:run",         // wildcard
		"agents:web:run",       // per-resource
		"agents:a b:read",      // id with a space
		"system:read",          // legacy alias
		"agent_os:admin",       // the default admin scope
		"agents:a1:b:read",     // four parts: unknown
		"agents::read",         // empty id: unknown
		"*:read",               // wildcard resource: unknown
		"agents:read\x00",      // control character: unknown
		"agents:\xff:read",     // invalid UTF-8: unknown
		"",                     // empty
		"config:vault:read",    // three-part of a non-resource family
		"workflows:w/1:delete", // id that no path segment can be
	} {
		f.Add(seed)
	}
	// One table for every input: the defaults, plus routes the scope may name.
	table, err := Compile(Options{Custom: []Mapping{{Key: "GET /fuzz/{id}", Scopes: []string{"agents:read"}}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc := ParseScope(s)
		if sc.Kind == KindUnknown {
			if sc != (Scope{}) {
				t.Fatalf("ParseScope(%q) = %+v: unknown scope with parts", s, sc)
			}
			if n := strings.Count(s, ":"); n == 1 || n == 2 {
				// Must be a bad part: check that at least one is.
				parts := strings.Split(s, ":")
				if validName(parts[0]) && validName(parts[len(parts)-1]) && (n == 1 || validID(parts[1])) {
					t.Fatalf("ParseScope(%q) is unknown, but its parts are valid", s)
				}
			}
		} else {
			if got := sc.String(); got != s {
				t.Fatalf("ParseScope(%q).String() = %q, want the input", s, got)
			}
			if again := ParseScope(sc.String()); again != sc {
				t.Fatalf("ParseScope(%q) = %+v, reparsed %+v", s, sc, again)
			}
			if (sc.Kind == KindGlobal) != (sc.ID == "") || (sc.Kind == KindWildcard) != (sc.ID == "*") {
				t.Fatalf("ParseScope(%q) = %+v: kind and id disagree", s, sc)
			}
			if !utf8.ValidString(s) {
				t.Fatalf("ParseScope(%q) accepted invalid UTF-8", s)
			}
		}

		// The engine: no panic on any caller scope, and a listing is never empty.
		set := table.Parse([]string{s, "agents:x:read"})
		for _, req := range [][2]string{
			{"GET", "/agents"}, {"POST", "/agents/" + s + "/runs"}, {"GET", "/fuzz/" + s}, {"DELETE", "/" + s},
		} {
			r := table.Check(req[0], req[1], &set)
			if r.Listing && len(r.AccessibleIDs) == 0 {
				t.Fatalf("Check(%s %s) with %q: listing with no ids", req[0], req[1], s)
			}
			_ = r.Grants()
			_ = r.Missing()
		}
		if !set.Has(s) {
			t.Fatalf("Parse([%q]).Has(%q) = false", s, s)
		}

		// The mapping grammar: s as a required scope compiles exactly when it
		// is a scope of the grammar, and then a caller holding s meets it.
		custom, err := Compile(Options{Custom: []Mapping{{Key: "POST /fuzz", Scopes: []string{s}}}})
		if (err == nil) != (sc.Kind != KindUnknown || s == DefaultAdminScope) {
			t.Fatalf("Compile with required scope %q: error %v, scope kind %v", s, err, sc.Kind)
		}
		if err != nil {
			return
		}
		holder := custom.Parse([]string{s})
		if r := custom.Check("POST", "/fuzz", &holder); !r.Allowed {
			t.Fatalf("a caller holding %q is denied the route requiring it: %+v", s, r)
		}
	})
}
