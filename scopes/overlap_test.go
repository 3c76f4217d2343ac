package scopes

import "testing"

func TestShadowed(t *testing.T) {
	tab, err := Compile(Options{Custom: []Mapping{
		{Key: "GET /agents/internal-*", Scopes: []string{"agent_os:admin"}}, // after GET /agents/*
		{Key: "GET /custom/*", Scopes: []string{}},
		{Key: "GET /custom/special/*", Scopes: []string{"agents:read"}}, // after GET /custom/*
		{Key: "GET /custom2/?", Scopes: []string{}},
		{Key: "GET /custom2/*", Scopes: []string{}}, // not covered by /custom2/?
		{Key: "POST /custom/*/x", Scopes: []string{}},
		{Key: "GET /exact/internal", Scopes: []string{}}, // literal: an exact key always wins
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range tab.Shadowed() {
		got[s.Rule.Key] = s.By.Key
	}
	want := map[string]string{
		"GET /agents/internal-*": "GET /agents/*",
		"GET /custom/special/*":  "GET /custom/*",
	}
	if len(got) != len(want) {
		t.Errorf("Shadowed() = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Shadowed()[%q] = %q, want %q", k, got[k], v)
		}
	}
	// The default table alone shadows nothing custom.
	def, _ := Compile(Options{})
	if s := def.Shadowed(); len(s) != 0 {
		t.Errorf("Shadowed() of the defaults = %v, want none", s)
	}
}

func TestOverlapping(t *testing.T) {
	tab, err := Compile(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		glob string
		some bool
		has  string
	}{
		{glob: "/*", some: true, has: "GET /config"},
		{glob: "/agents/*", some: true, has: "POST /agents/*/runs"},
		{glob: "/health", some: false},
		{glob: "/docs", some: false},
		{glob: "/public/*", some: false},
		{glob: "/config", some: true, has: "GET /config"},
	} {
		g, err := CompileGlob(tt.glob)
		if err != nil {
			t.Fatal(err)
		}
		rules := tab.Overlapping(g)
		if (len(rules) > 0) != tt.some {
			t.Errorf("Overlapping(%s) = %d rules, want some=%v", tt.glob, len(rules), tt.some)
			continue
		}
		if tt.has == "" {
			continue
		}
		found := false
		for _, r := range rules {
			found = found || r.Key == tt.has
		}
		if !found {
			t.Errorf("Overlapping(%s) lacks %s", tt.glob, tt.has)
		}
	}
}
