package authz

import (
	"fmt"
	"testing"
	"time"

	"github.com/agentos-authz/agentos-authz/authz/internal/jwtauth"
)

// TestTokenCacheRoom checks the bound on the whole cache: as many tokens as
// its size are all remembered although they spread unevenly over the
// shards, one more evicts, and the count follows the entries dropped.
func TestTokenCacheRoom(t *testing.T) {
	for _, size := range []int{1, 100, 5000, 20000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			c := newTokenCache(size, time.Hour, 0)
			exp := testNow.Add(time.Minute)
			put := func(i int) {
				id := jwtauth.Identity{UserID: fmt.Sprint("u", i), Scopes: []string{"agents:read"}, Expires: exp}
				d := c.digest(fmt.Sprintf("token-%d", i))
				c.put(&d, jwtauth.Generation{}, testNow, &id, time.Time{}, newPrincipal(&id))
			}
			for i := range size {
				put(i)
			}
			if n := c.len(); n != size {
				t.Fatalf("%d tokens in a cache of %d: len = %d, want all of them", size, size, n)
			}
			for i := size; i < size+size/10+1; i++ {
				put(i)
			}
			if n := c.len(); n != size || c.count.Load() != int64(n) {
				t.Fatalf("after more tokens than its size: len = %d, count = %d, want %d", n, c.count.Load(), size)
			}
			// Past exp every lookup drops its entry.
			for i := range size + size/10 + 1 {
				d := c.digest(fmt.Sprintf("token-%d", i))
				if _, ok := c.get(&d, jwtauth.Generation{}, exp.Add(time.Second)); ok {
					t.Fatalf("token %d served past its exp", i)
				}
			}
			if n := c.len(); n != 0 || c.count.Load() != 0 {
				t.Errorf("after every entry expired: len = %d, count = %d, want 0", n, c.count.Load())
			}
		})
	}
}
