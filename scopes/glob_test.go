package scopes

import (
	"errors"
	"testing"
)

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{pattern: "/agents", s: "/agents", want: true},
		{pattern: "/agents", s: "/agents/a1", want: false},
		{pattern: "/agents", s: "/Agents", want: false},
		// '*' crosses '/' (docs/CONTRACT.md §5), unlike path.Match.
		{pattern: "/agents/*", s: "/agents/a1", want: true},
		{pattern: "/agents/*", s: "/agents/a1/runs/r1", want: true},
		{pattern: "/agents/*", s: "/agents/", want: true},
		{pattern: "/agents/*", s: "/agents", want: false},
		{pattern: "/agents/*/runs", s: "/agents/a1/runs", want: true},
		{pattern: "/agents/*/runs", s: "/agents/a/b/runs", want: true},
		{pattern: "/agents/*/runs", s: "/agents/a1/runs/r1", want: false},
		{pattern: "/agents/*/runs/*/cancel", s: "/agents/a/runs/r/cancel", want: true},
		{pattern: "/agents/*/runs/*/cancel", s: "/agents/a/runs/r/cancel/x", want: false},
		{pattern: "*", s: "", want: true},
		{pattern: "*", s: "/anything/at/all", want: true},
		{pattern: "**/x", s: "/a/x", want: true},
		{pattern: "*a*b*c", s: "xxaxxbxxbxc", want: true},
		{pattern: "*a*b*c", s: "xxaxxbxxbx", want: false},
		// '?' is one character, a rune, '/' included.
		{pattern: "/files/v?", s: "/files/v1", want: true},
		{pattern: "/files/v?", s: "/files/v12", want: false},
		{pattern: "/files/v?", s: "/files/v", want: false},
		{pattern: "/a?b", s: "/a/b", want: true},
		{pattern: "/?", s: "/é", want: true},
		// Classes.
		{pattern: "/files/v?/[abc]*", s: "/files/v1/b", want: true},
		{pattern: "/files/v?/[abc]*", s: "/files/v1/d.txt", want: false},
		{pattern: "/x/[a-c]", s: "/x/b", want: true},
		{pattern: "/x/[a-c]", s: "/x/d", want: false},
		{pattern: "/x/[!a-c]", s: "/x/d", want: true},
		{pattern: "/x/[!a-c]", s: "/x/b", want: false},
		{pattern: "/x/[!a]", s: "/x//", want: true},
		{pattern: "/x/[]]", s: "/x/]", want: true},
		{pattern: "/x/[!]]", s: "/x/]", want: false},
		{pattern: "/x/[!]]", s: "/x/a", want: true},
		{pattern: "/x/[a-]", s: "/x/-", want: true},
		{pattern: "/x/[-a]", s: "/x/-", want: true},
		{pattern: "/x/[z-a]", s: "/x/m", want: false}, // reversed range: empty
		{pattern: "/x/[a-c-e]", s: "/x/-", want: true},
		{pattern: "/x/[a-c-e]", s: "/x/d", want: false},
		{pattern: "/x/[é]", s: "/x/é", want: true},
		{pattern: "/x/[^a]", s: "/x/^", want: true}, // '^' is not negation in fnmatch
		{pattern: "/x/[*?]", s: "/x/*", want: true},
		{pattern: "/x/[*?]", s: "/x/a", want: false},
		// {param} is '*'.
		{pattern: "/reports/{report_id}", s: "/reports/r1", want: true},
		{pattern: "/reports/{report_id}", s: "/reports/r1/export", want: true},
		{pattern: "/reports/{id}/export", s: "/reports/r1/export", want: true},
		{pattern: "/reports/{id}/export", s: "/reports/r1/other", want: false},
		{pattern: "/a/}", s: "/a/}", want: true},
		// Literal characters that are special elsewhere.
		{pattern: "/a2a/agents/*/v1/message:send", s: "/a2a/agents/x/v1/message:send", want: true},
		{pattern: "/a2a/agents/*/v1/message:send", s: "/a2a/agents/x/v1/message:stream", want: false},
		{pattern: `/a\*`, s: `/a\xyz`, want: true}, // no escape character
		{pattern: "/a.b", s: "/axb", want: false},
		{pattern: "/", s: "/", want: true},
		{pattern: "", s: "", want: true},
		{pattern: "", s: "/", want: false},
	}
	for _, tt := range tests {
		g, err := CompileGlob(tt.pattern)
		if err != nil {
			t.Errorf("CompileGlob(%q) error: %v", tt.pattern, err)
			continue
		}
		if got := g.Match(tt.s); got != tt.want {
			t.Errorf("CompileGlob(%q).Match(%q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
		if ref := refGlobMatch(tt.pattern, tt.s); ref != tt.want {
			t.Errorf("refGlobMatch(%q, %q) = %v, want %v (the fuzz reference is wrong)", tt.pattern, tt.s, ref, tt.want)
		}
		if g.String() != tt.pattern {
			t.Errorf("CompileGlob(%q).String() = %q", tt.pattern, g.String())
		}
	}
}

func TestCompileGlobErrors(t *testing.T) {
	for _, pattern := range []string{
		"/x/[abc",
		"/x/[",
		"/x/[!",
		"/x/[]",  // ']' first is a member: still unterminated
		"/x/[!]", // likewise
		"/x/{id",
		"/x/{}",
		"/x/{a/b}",
		"/x/{a{b}",
		"/x/\xff",
	} {
		g, err := CompileGlob(pattern)
		if !errors.Is(err, ErrBadPattern) {
			t.Errorf("CompileGlob(%q) = %v, %v; want an ErrBadPattern", pattern, g, err)
		}
		if refGlobValid(pattern) {
			t.Errorf("refGlobValid(%q) = true, want false (the fuzz reference is wrong)", pattern)
		}
	}
}

func TestGlobLiteral(t *testing.T) {
	for pattern, want := range map[string]bool{
		"/agents": true, "/a:b.c-d_e": true, "/a}": true, "/a/*": false, "/a?": false, "/[a]": false, "/{id}": false,
	} {
		g, err := CompileGlob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		if g.Literal() != want {
			t.Errorf("CompileGlob(%q).Literal() = %v, want %v", pattern, g.Literal(), want)
		}
	}
	var zero Glob
	if !zero.Match("") || zero.Match("/") {
		t.Error("the zero Glob does not match exactly the empty string")
	}
}

func TestGlobMatchNoAllocs(t *testing.T) {
	g, err := CompileGlob("/components/*/configs/[!x]*/set-current")
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		sinkBool = g.Match("/components/c1/configs/abc/set-current") && g.Match("/components/c1/configs/xbc/set-current/x")
	}); n != 0 {
		t.Errorf("Glob.Match allocates %v times per run, want 0", n)
	}
}

var sinkBool bool
