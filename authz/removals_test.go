package authz

import (
	"fmt"
	"slices"
	"testing"
)

// TestRemovals: every inbound x-agentos-* name not set upstream, once,
// lower-cased and sorted, whatever its case; the others are kept.
func TestRemovals(t *testing.T) {
	h := map[string]string{
		"X-Agentos-Foo":     "a",
		"x-agentos-foo":     "b",
		"X-AGENTOS-FOO":     "c",
		"x-agentos-user-id": "spoof",
		"X-Agentos-Auth":    "jwt",
		"x-agentos-":        "empty suffix",
		"x-agentosfoo":      "no dash: not ours",
		"authorization":     "Bearer t",
	}
	up := []Header{{Name: HeaderUserID, Value: "u"}, {Name: headerAuth, Value: authJWT}}
	got := removals(h, up)
	want := []string{"x-agentos-", "x-agentos-foo"}
	if !slices.Equal(got, want) {
		t.Errorf("removals = %q, want %q", got, want)
	}
}

// BenchmarkRemovals: n distinct x-agentos-* names, each listed once; the
// ns/header metric stays flat as n grows tenfold (it grew tenfold, the
// work was quadratic).
func BenchmarkRemovals(b *testing.B) {
	up := []Header{{Name: headerAuth, Value: authNone}}
	for _, n := range []int{5_000, 50_000} {
		h := make(map[string]string, n)
		for i := range n {
			h[fmt.Sprintf("x-agentos-h%d", i)] = "forged"
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				if got := removals(h, up); len(got) != n {
					b.Fatalf("removals listed %d, want %d", len(got), n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/header")
		})
	}
}
