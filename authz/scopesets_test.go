package authz

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"unsafe"

	"github.com/agentos-authz/agentos-authz/authz/internal/jwtauth"
	"github.com/agentos-authz/agentos-authz/scopes"
)

func internTable(t testing.TB) *scopes.Table {
	t.Helper()
	tb, err := scopes.Compile(scopes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// TestScopeSets checks that an interned Set is the Set parsing gives, for
// every shape of list, on a miss and on a hit.
func TestScopeSets(t *testing.T) {
	tb := internTable(t)
	tests := []struct {
		name string
		id   jwtauth.Identity
	}{
		{name: "none", id: jwtauth.Identity{UserID: "u"}},
		{name: "one", id: jwtauth.Identity{UserID: "u", Scopes: []string{"agents:read"}}},
		{name: "several", id: jwtauth.Identity{UserID: "u", SessionID: "s", Scopes: []string{"agents:read", "agents:a1:run", "teams:*:read"}}},
		{name: "admin", id: jwtauth.Identity{Scopes: []string{scopes.DefaultAdminScope}}},
		{name: "unknown shapes kept", id: jwtauth.Identity{Scopes: []string{"bogus", "", "agents:read"}}},
		{name: "a scope with a space", id: jwtauth.Identity{Scopes: []string{"agents:sales bot:run", "agents:read"}}},
		{name: "more than 16", id: jwtauth.Identity{Scopes: []string{"a:read", "b:read", "c:read", "d:read", "e:read", "f:read",
			"g:read", "h:read", "i:read", "j:read", "k:read", "l:read", "m:read", "n:read", "o:read", "p:read", "q:read"}}},
	}
	sets := newScopeSets(scopeSetSlots)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPrincipal(&tc.id)
			want := tb.Parse(tc.id.Scopes)
			for _, round := range []string{"miss", "hit"} {
				got := sets.set(&p, tb)
				if !reflect.DeepEqual(got.Scopes(), want.Scopes()) || got.IsAdmin() != want.IsAdmin() {
					t.Errorf("%s: set(%q) = %q admin %v, want %q admin %v", round, tc.id.Scopes, got.Scopes(), got.IsAdmin(), want.Scopes(), want.IsAdmin())
				}
				for _, probe := range []string{"GET /agents", "POST /agents/a1/runs", "GET /teams/t1", "DELETE /config"} {
					var method, path string
					fmt.Sscan(probe, &method, &path)
					if g, w := tb.Check(method, path, got), tb.Check(method, path, &want); g.Allowed != w.Allowed {
						t.Errorf("%s: Check(%s) with the interned set = %v, parsed = %v", round, probe, g.Allowed, w.Allowed)
					}
				}
			}
		})
	}
}

// TestScopeSetsShared checks that a list is parsed once and then shared,
// that the entry does not keep the principal's other strings, and that a
// table too small for the lists in use still answers exactly.
func TestScopeSetsShared(t *testing.T) {
	tb := internTable(t)
	sets := newScopeSets(scopeSetSlots)
	a := newPrincipal(&jwtauth.Identity{UserID: "alice", Scopes: []string{"agents:read", "teams:read"}})
	b := newPrincipal(&jwtauth.Identity{UserID: "bob", SessionID: "s-9", Scopes: []string{"agents:read", "teams:read"}})
	if sa, sb := sets.set(&a, tb), sets.set(&b, tb); sa != sb {
		t.Errorf("set(alice) = %p, set(bob) = %p: the same list is not shared", sa, sb)
	}

	tiny := newScopeSets(2) // one pair: every list competes for it
	for i := range 200 {
		list := []string{fmt.Sprintf("agents:a%d:run", i%7), "teams:read"}
		p := newPrincipal(&jwtauth.Identity{UserID: fmt.Sprint("u", i), Scopes: list})
		got := tiny.set(&p, tb)
		if want := tb.Parse(list); !reflect.DeepEqual(got.Scopes(), want.Scopes()) {
			t.Fatalf("tiny table, list %q: set = %q", list, got.Scopes())
		}
	}
	if n := len(tiny.slots); n != 2 {
		t.Errorf("tiny table grew to %d slots", n)
	}
}

// TestScopeSetsConcurrent runs decisions of many lists at once (run with
// -race): lookups and replacements of entries never mix two lists.
func TestScopeSetsConcurrent(t *testing.T) {
	tb := internTable(t)
	sets := newScopeSets(4)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				list := []string{fmt.Sprintf("agents:a%d:run", (g+i)%13), "sessions:read"}
				p := newPrincipal(&jwtauth.Identity{Scopes: list})
				if got := sets.set(&p, tb).Scopes(); !reflect.DeepEqual(got, list) {
					t.Errorf("set(%q) = %q", list, got)
					return
				}
			}
		})
	}
	wg.Wait()
}

// maxInternedAllocs: a cached decision allocates only its upstream
// headers (the verified token and its parsed scopes are both remembered).
const maxInternedAllocs = 1

func TestDecideCachedInternedAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	a, r := cachedBench(t)
	ctx := context.Background()
	if allocs := testing.AllocsPerRun(200, func() { decisionSink = a.Decide(ctx, r) }); allocs > maxInternedAllocs {
		t.Errorf("a cached decision allocates %.1f times, want at most %d", allocs, maxInternedAllocs)
	}
}

// TestScopeSetsShare checks that cached principals of one scope list hold
// one copy of its text, and keep their own ids and forwarded claims.
func TestScopeSetsShare(t *testing.T) {
	tb := internTable(t)
	sets := newScopeSets(scopeSetSlots)
	fwd := []jwtauth.Header{{Name: headerClaimPrefix + "org", Value: "acme"}}
	tests := []struct {
		name   string
		id     jwtauth.Identity
		shared bool // the scopes text comes from the interned entry
	}{
		{name: "ids and scopes", id: jwtauth.Identity{UserID: "alice", SessionID: "s-1", Scopes: []string{"agents:read", "teams:read"}}, shared: true},
		{name: "no session", id: jwtauth.Identity{UserID: "bob", Scopes: []string{"agents:read", "teams:read"}}, shared: true},
		{name: "forwarded claims", id: jwtauth.Identity{UserID: "carol", Scopes: []string{"agents:read", "teams:read"}, Forward: fwd}, shared: true},
		{name: "no scopes", id: jwtauth.Identity{UserID: "dave"}},
		{name: "a scope with a space", id: jwtauth.Identity{UserID: "erin", Scopes: []string{"agents:sales bot:run"}}},
	}
	var text *byte
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPrincipal(&tc.id)
			got := sets.share(p, tb)
			if got.userID != p.userID || got.sessionID != p.sessionID || got.scopes != p.scopes ||
				!reflect.DeepEqual(got.forward(), p.forward()) {
				t.Errorf("share(%+v) = %+v, want the same values", p, got)
			}
			if want, have := tb.Parse(tc.id.Scopes), sets.set(&got, tb); !reflect.DeepEqual(have.Scopes(), want.Scopes()) {
				t.Errorf("set(share(p)) = %q, want %q", have.Scopes(), want.Scopes())
			}
			if !tc.shared {
				return
			}
			if text == nil {
				text = unsafe.StringData(got.scopes)
			} else if unsafe.StringData(got.scopes) != text {
				t.Errorf("share(%s): the scopes text is a copy, not the interned one", tc.id.UserID)
			}
		})
	}
}
