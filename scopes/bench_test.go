package scopes

import (
	"testing"
)

// typicalCaller is the benchmark's typical caller: ten scopes of every shape.
var typicalCaller = []string{
	"agents:read", "teams:read", "workflows:*:read", "sessions:read", "sessions:write",
	"memories:read", "agents:research:run", "agents:web:run", "teams:support:run", "config:read",
}

// benchCases are typical decisions; all but the listing must not allocate.
var benchCases = []struct {
	name, method, path string
	caller             []string // nil: typicalCaller
	allowed            bool
	allocs             bool // may allocate (a filtered listing's ids)
}{
	{name: "per-resource run", method: "POST", path: "/agents/web/runs", allowed: true},
	{name: "global read by id", method: "GET", path: "/agents/a1", allowed: true},
	{name: "exact key", method: "GET", path: "/config", allowed: true},
	{name: "late pattern", method: "POST", path: "/components/c1/configs/v2/set-current", allowed: false},
	{name: "denied run", method: "POST", path: "/teams/t9/runs", allowed: false},
	{name: "unmapped", method: "GET", path: "/totally/unmapped/route", allowed: true},
	{name: "head", method: "HEAD", path: "/sessions/s1", allowed: true},
	{name: "collection by wildcard", method: "GET", path: "/workflows", allowed: true},
	{name: "filtered listing", method: "GET", path: "/teams", caller: []string{"agents:read", "teams:t1:read", "teams:t2:read"}, allowed: true, allocs: true},
}

var sinkResult Result

func callerOf(scopes []string) []string {
	if scopes == nil {
		return typicalCaller
	}
	return scopes
}

// TestCheckNoAllocs locks the hot path: a decision allocates nothing.
func TestCheckNoAllocs(t *testing.T) {
	table := mustCompile(t, Options{})
	for _, bc := range benchCases {
		set := table.Parse(callerOf(bc.caller))
		if r := table.Check(bc.method, bc.path, &set); r.Allowed != bc.allowed {
			t.Errorf("Check(%s %s) allowed = %v, want %v", bc.method, bc.path, r.Allowed, bc.allowed)
		}
		if bc.allocs {
			continue
		}
		if n := testing.AllocsPerRun(100, func() {
			sinkResult = table.Check(bc.method, bc.path, &set)
		}); n != 0 {
			t.Errorf("Check(%s %s) allocates %v times per run, want 0", bc.method, bc.path, n)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	table := mustCompile(b, Options{})
	for _, bc := range benchCases {
		set := table.Parse(callerOf(bc.caller))
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkResult = table.Check(bc.method, bc.path, &set)
			}
		})
	}
}

// BenchmarkParse is the once-per-request cost of reading the caller's scopes.
func BenchmarkParse(b *testing.B) {
	table := mustCompile(b, Options{})
	b.ReportAllocs()
	for b.Loop() {
		s := table.Parse(typicalCaller)
		sinkBool = s.IsAdmin()
	}
}
