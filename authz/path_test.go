package authz

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		raw  string
		want string // "" = malformed
	}{
		// Accepted.
		{raw: "/", want: "/"},
		{raw: "/agents", want: "/agents"},
		{raw: "/agents/", want: "/agents"},
		{raw: "/agents/a1/runs/", want: "/agents/a1/runs"},
		{raw: "/agents?limit=5", want: "/agents"},
		{raw: "/agents/?limit=5", want: "/agents"},
		{raw: "/?x=1", want: "/"},
		{raw: "/agents#frag", want: "/agents"},
		{raw: "/config?x=%00%ff%2F..", want: "/config"}, // the query is never looked at
		{raw: "/agents?q=%zz", want: "/agents"},
		{raw: "/agents/sales%20bot", want: "/agents/sales bot"},
		{raw: "/agents/a%252Fb", want: "/agents/a%2Fb"}, // decoded once
		{raw: "/agents/a%25", want: "/agents/a%"},
		{raw: "/agents/.dotfile", want: "/agents/.dotfile"},
		{raw: "/agents/...", want: "/agents/..."},
		{raw: "/agents/..a", want: "/agents/..a"},
		{raw: "/agents/%2e%2e%2e", want: "/agents/..."},
		{raw: "/agents/caf%C3%A9", want: "/agents/café"},
		{raw: "/agents/café", want: "/agents/café"},
		{raw: "/a%3Fb", want: "/a?b"},
		{raw: "/a/b%2a", want: "/a/b*"},

		// Ambiguous: 400 Malformed request path.
		{raw: ""},
		{raw: "agents"},
		{raw: "*"},
		{raw: "?x=1"},
		{raw: "http://host/agents"},
		{raw: "//"},
		{raw: "//config"},
		{raw: "/agents//a1"},
		{raw: "/agents/a1//"},
		{raw: "/agents/."},
		{raw: "/agents/./a1"},
		{raw: "/agents/.."},
		{raw: "/agents/../config"},
		{raw: "/agents/../config?x=1"},
		{raw: "/./agents"},
		{raw: "/agents/%2e%2e/config"},
		{raw: "/agents/%2E%2E/config"},
		{raw: "/agents/%2E./config"},
		{raw: "/agents/.%2e/config"},
		{raw: "/agents/%2e"},
		{raw: "/agents/%2e/"},
		{raw: "/agents/a%2Fb"},
		{raw: "/agents/a%2fb"},
		{raw: "/agents/a\\b"},
		{raw: "/agents/a%5Cb"},
		{raw: "/agents/a%5cb"},
		{raw: "/agents/a%00b"},
		{raw: "/agents/a\x00b"},
		{raw: "/agents/a%09b"},
		{raw: "/agents/a\tb"},
		{raw: "/agents/a%1Fb"},
		{raw: "/agents/a%0Ab"},
		{raw: "/agents/a\rb"},
		{raw: "/agents/a%7Fb"},
		{raw: "/agents/a\x7fb"},
		{raw: "/agents/a%zz"},
		{raw: "/agents/a%2"},
		{raw: "/agents/a%"},
		{raw: "/agents/a%g0"},
		{raw: "/agents/%80"},
		{raw: "/agents/%c0%ae%c0%ae/config"}, // overlong "..": invalid UTF-8
		{raw: "/config/%ff"},
		{raw: "/agents/\xff"},
		{raw: "/agents/%ed%a0%80"}, // a UTF-16 surrogate
	}
	for _, tt := range tests {
		got, ok := normalizePath(tt.raw)
		if tt.want == "" {
			if ok {
				t.Errorf("normalizePath(%q) = %q, want malformed", tt.raw, got)
			}
			continue
		}
		if !ok || got != tt.want {
			t.Errorf("normalizePath(%q) = %q, %v; want %q, true", tt.raw, got, ok, tt.want)
		}
	}
}

// TestNormalizePathNoAllocs locks the zero-allocation path: a path without
// percent escapes comes back as a substring of the input.
func TestNormalizePathNoAllocs(t *testing.T) {
	for _, raw := range []string{"/agents/a1/runs?x=1", "/health/", "/", "/agents/café"} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, ok := normalizePath(raw); !ok {
				t.Fatalf("normalizePath(%q) malformed", raw)
			}
		})
		if allocs != 0 {
			t.Errorf("normalizePath(%q) allocates %v times, want 0", raw, allocs)
		}
	}
}

// reescape writes a normalised path back as a raw target that means the
// same path: the characters that would be read as a query, a fragment or
// an escape are percent-encoded.
func reescape(p string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23")
	return r.Replace(p)
}

func FuzzNormalizePath(f *testing.F) {
	for _, seed := range []string{
		"/", "/agents/a1/runs/", "/agents?x=1", "/agents/a%252Fb", // accepted
		"/agents/%2e%2e/x", "//x", "/a%2Fb", "/a\\b", "/a%00", "/%c0%ae", "/a%zz", // ambiguous
		"/a%3Fb#c", "/caf%C3%A9/", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, ok := normalizePath(raw)
		if !ok {
			if got != "" {
				t.Fatalf("normalizePath(%q) = %q, false; want empty on failure", raw, got)
			}
			return
		}
		// Properties of an accepted path.
		if !strings.HasPrefix(got, "/") || !utf8.ValidString(got) {
			t.Fatalf("normalizePath(%q) = %q: not an absolute UTF-8 path", raw, got)
		}
		if got != "/" && strings.HasSuffix(got, "/") {
			t.Fatalf("normalizePath(%q) = %q: trailing slash kept", raw, got)
		}
		for _, seg := range strings.Split(got[1:], "/") {
			if got != "/" && (seg == "" || seg == "." || seg == "..") {
				t.Fatalf("normalizePath(%q) = %q: segment %q", raw, got, seg)
			}
		}
		for i := 0; i < len(got); i++ {
			if forbiddenPathByte(got[i]) {
				t.Fatalf("normalizePath(%q) = %q: byte %#x", raw, got, got[i])
			}
		}
		// Idempotent: the accepted path, written back as a target,
		// normalises to itself.
		again, ok := normalizePath(reescape(got))
		if !ok || again != got {
			t.Fatalf("normalizePath(reescape(%q)) = %q, %v; want %q (from %q)", got, again, ok, got, raw)
		}
	})
}

// normalizePath on a few request targets: a query dropped, an escaped
// percent kept, dot segments and an encoded slash refused.
func Example_normalizePath() {
	for _, raw := range []string{"/agents/a1/runs/?stream=true", "/agents/a%252Fb", "/health/../config", "/agents/a%2Fb"} {
		p, ok := normalizePath(raw)
		fmt.Printf("%-30q → %q %v\n", raw, p, ok)
	}
	// Output:
	// "/agents/a1/runs/?stream=true" → "/agents/a1/runs" true
	// "/agents/a%252Fb"              → "/agents/a%2Fb" true
	// "/health/../config"            → "" false
	// "/agents/a%2Fb"                → "" false
}
