package authz

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentos-authz/agentos-authz/authz/internal/jwtauth"
	"github.com/agentos-authz/agentos-authz/scopes"
)

// This file owns the verified-token cache (README, Performance): what a valid token
// says (its principal: user, session, scopes, forwarded claims),
// remembered so a token seen again skips the signature and the claims
// decoding.
//
// Safety rules, each enforced here:
//   - the key is the token's SHA-256: a hit needs the whole digest to be
//     equal, so a different token never reads another's entry (finding two
//     tokens with one digest is a SHA-256 collision);
//   - only valid tokens are stored; a failure is never remembered here
//     (the failures that cannot change are, apart: failcache.go);
//   - an entry serves only while the clock is inside the token's validity
//     (nbf/iat and exp, with the leeway, truncated to seconds as jwx does)
//     and within cache_ttl of its verification: past that it is a miss, and
//     the full verification gives the exact answer (Token has expired);
//   - an entry is tied to the JWKS key set it was verified with: when the
//     key set changes, every older entry is a miss (a removed key stops
//     verifying at once);
//   - the cache belongs to one snapshot: its audience, issuer and claim
//     rules (checked at verification) cannot change under it; the scopes
//     are checked against the route table by every decision.
//
// The cache is split in shards, each with its own mutex, a map from the
// digest's first 8 bytes to a slot, and a CLOCK (second-chance) eviction:
// a hit only sets a reference bit, and the hand skips referenced entries
// once. No lock is shared by all requests. The bound is on the total:
// tokens do not spread evenly over the shards (at 100 000 entries in 64
// shards, half of them get more than their share), so a shard may hold
// some entries beyond its share while the cache as a whole has room.
// Without that room, a shard over its share evicts although the cache
// is not full, and a token pool as large as the cache misses half the
// time (measured with authz-bench and 100 000 tokens).

// principal is an authenticated caller as a decision uses it, small
// enough to be remembered 100 000 times within the memory budget: its
// strings share one allocation, and its scopes are kept as the header
// value (parsed again by each decision: a parsed scopes.Set costs 72
// bytes per scope, three times the rest of an entry).
type principal struct {
	userID    string
	sessionID string
	// scopes is the x-agentos-scopes value: the caller's scopes in token
	// order, space-separated.
	scopes string
	// extra holds what few tokens have: nil for most.
	extra *principalExtra
	// up is the identity-token slot of the caller token (upstream.go):
	// nil unless upstream.identity_token is on.
	up *reissued
}

type principalExtra struct {
	// list is the scopes one by one, when one of them holds a space
	// ("agents:sales bot:run") and scopes cannot be split on spaces.
	list    []string
	forward []Header
}

// newPrincipal builds the principal of a verified identity.
func newPrincipal(id *jwtauth.Identity) principal {
	n := len(id.UserID) + len(id.SessionID)
	spaced := false
	for i, s := range id.Scopes {
		if i > 0 {
			n++
		}
		n += len(s)
		spaced = spaced || strings.IndexByte(s, ' ') >= 0
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(id.UserID)
	b.WriteString(id.SessionID)
	for i, s := range id.Scopes {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	blob := b.String()
	u, sess := len(id.UserID), len(id.SessionID)
	p := principal{userID: blob[:u], sessionID: blob[u : u+sess], scopes: blob[u+sess:]}
	if spaced || len(id.Forward) > 0 {
		p.extra = &principalExtra{}
		if len(id.Forward) > 0 {
			p.extra.forward = make([]Header, len(id.Forward))
			for i, h := range id.Forward {
				p.extra.forward[i] = Header(h)
			}
		}
		if spaced {
			p.extra.list = id.Scopes
		}
	}
	return p
}

// forward is the x-agentos-claim-* headers of the principal.
func (p *principal) forward() []Header {
	if p.extra == nil {
		return nil
	}
	return p.extra.forward
}

// parseScopes parses the principal's scopes with t (see parseScopeText).
// Decisions take them from the snapshot's interned sets instead.
func (p *principal) parseScopes(t *scopes.Table) scopes.Set {
	if p.extra != nil && p.extra.list != nil {
		return t.Parse(p.extra.list)
	}
	if p.scopes == "" {
		return scopes.Set{}
	}
	return parseScopeText(p.scopes, t)
}

// cacheEntry is a remembered valid token.
type cacheEntry struct {
	digest [sha256.Size]byte
	// keys is the JWKS key set current when the token was verified (nil
	// without a JWKS): the entry serves only while it still is.
	keys jwtauth.Generation
	// from and to bound the validity in Unix nanoseconds: from is compared
	// with the clock truncated to the second (jwx's rule for nbf and iat),
	// to with the clock itself (it is the earlier of exp + leeway and the
	// verification + cache_ttl; comparing the exact clock with exp is
	// stricter than jwx by under a second, and a miss is always safe).
	from, to int64
	p        principal
	used     bool // the slot holds an entry
	ref      bool // CLOCK reference bit
}

type cacheShard struct {
	mu    sync.Mutex
	index map[uint64]int32
	slots []cacheEntry
	// limit is the shard's share of the cache size; room, a few
	// standard deviations above it, is how many slots it may use.
	limit int
	room  int
	hand  int
	// Keep two shards' mutexes off one cache line.
	_ [64]byte
}

// tokenCache is the verified-token cache of one snapshot. Safe for
// concurrent use.
type tokenCache struct {
	shards []cacheShard
	mask   uint64
	ttl    time.Duration
	leeway time.Duration
	// size bounds count, the entries of all shards together.
	size  int64
	count atomic.Int64
	// bufs holds token copies for hashing: sha256.Sum256 takes a []byte,
	// and converting the token string would allocate on every request.
	bufs sync.Pool
}

// cacheShardsMax is the shard count of a large cache; small caches use
// fewer so each shard keeps a useful size.
const (
	cacheShardsMax     = 64
	cacheShardMinSlots = 64
)

// newTokenCache makes a cache of at most size entries, each served for
// at most ttl; nil when size or ttl is 0 (no cache).
func newTokenCache(size int, ttl, leeway time.Duration) *tokenCache {
	if size <= 0 || ttl <= 0 {
		return nil
	}
	n := 1
	for n < cacheShardsMax && size/(n*2) >= cacheShardMinSlots {
		n *= 2
	}
	c := &tokenCache{shards: make([]cacheShard, n), mask: uint64(n - 1), ttl: ttl, leeway: leeway, size: int64(size)}
	for i := range c.shards {
		limit := size / n
		if i < size%n {
			limit++
		}
		c.shards[i].limit = limit
		c.shards[i].room = limit
		if n > 1 {
			// Four standard deviations of a shard's share of uniformly
			// spread tokens (binomial): about 10% more slots at the
			// default size, and a shard of a full cache passes it with
			// a probability under 1e-4.
			c.shards[i].room = min(size, limit+4*int(math.Sqrt(float64(limit))))
		}
		c.shards[i].index = make(map[uint64]int32)
	}
	c.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	return c
}

// digest is the cache key of a token.
func (c *tokenCache) digest(tok string) [sha256.Size]byte {
	bp, _ := c.bufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, len(tok))
		bp = &b
	}
	buf := append((*bp)[:0], tok...)
	d := sha256.Sum256(buf)
	if cap(buf) <= jwtauth.MaxTokenBytes {
		*bp = buf
		c.bufs.Put(bp)
	}
	return d
}

func (c *tokenCache) shard(d *[sha256.Size]byte) (*cacheShard, uint64) {
	k := binary.LittleEndian.Uint64(d[:8])
	return &c.shards[binary.LittleEndian.Uint64(d[8:16])&c.mask], k
}

// get returns the principal remembered for d if the entry was verified
// with keys and the clock (now) is inside its validity. An entry found
// out of its validity is dropped.
func (c *tokenCache) get(d *[sha256.Size]byte, keys jwtauth.Generation, now time.Time) (principal, bool) {
	s, k := c.shard(d)
	at, atSec := now.UnixNano(), now.Truncate(time.Second).UnixNano()
	s.mu.Lock()
	i, ok := s.index[k]
	if !ok {
		s.mu.Unlock()
		return principal{}, false
	}
	e := &s.slots[i]
	if e.digest != *d {
		s.mu.Unlock()
		return principal{}, false
	}
	if e.keys != keys || atSec < e.from || at >= e.to {
		// Stale: a new key set, expired, or (a clock set back) not valid
		// yet. Drop it; the caller verifies afresh.
		delete(s.index, k)
		*e = cacheEntry{}
		c.count.Add(-1)
		s.mu.Unlock()
		return principal{}, false
	}
	e.ref = true
	p := e.p
	s.mu.Unlock()
	return p, true
}

// put remembers a valid token verified at now with keys: id is what it
// says, validFrom the later of its nbf and iat (zero when none).
func (c *tokenCache) put(d *[sha256.Size]byte, keys jwtauth.Generation, now time.Time, id *jwtauth.Identity, validFrom time.Time, p principal) {
	to := now.Add(c.ttl).UnixNano()
	if !id.Expires.IsZero() {
		// jwx: valid while now (truncated to the second) is before exp + leeway.
		to = min(to, id.Expires.Add(c.leeway).UnixNano())
	}
	from := int64(math.MinInt64)
	if !validFrom.IsZero() {
		from = validFrom.Add(-c.leeway).UnixNano()
	}
	if now.UnixNano() >= to {
		return
	}
	s, k := c.shard(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	// A new entry starts unreferenced: a stream of tokens seen once (a
	// fresh token per request) replaces itself, not the entries in use.
	e := cacheEntry{digest: *d, keys: keys, from: from, to: to, p: p, used: true}
	if i, ok := s.index[k]; ok {
		// The same token again, or another digest sharing the 8-byte
		// index: either way this slot now holds d.
		s.slots[i] = e
		return
	}
	if len(s.slots) < s.room && c.reserve() {
		if s.slots == nil {
			// All at once: growing by appends would leave garbage copies
			// behind while a cache of 100k tokens fills up.
			s.slots = make([]cacheEntry, 0, s.room)
		}
		s.slots = append(s.slots, e)
		s.index[k] = int32(len(s.slots) - 1)
		return
	}
	// CLOCK: take the first free or unreferenced slot, clearing the
	// reference bits passed on the way. A free slot is taken only while
	// the cache has room. Two turns at most: after one, no bit is set; a
	// shard with nothing to give (all free, the cache full) does not
	// remember the token.
	for range 2 * len(s.slots) {
		if s.hand >= len(s.slots) {
			s.hand = 0
		}
		v := &s.slots[s.hand]
		switch {
		case v.used && v.ref:
			v.ref = false
		case v.used || c.reserve():
			if v.used {
				delete(s.index, binary.LittleEndian.Uint64(v.digest[:8]))
			}
			*v = e
			s.index[k] = int32(s.hand)
			s.hand++
			return
		}
		s.hand++
	}
}

// reserve counts one more entry if the cache has room for it.
func (c *tokenCache) reserve() bool {
	if c.count.Add(1) > c.size {
		c.count.Add(-1)
		return false
	}
	return true
}

// len is the number of entries (tests and the cache-size gauge).
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.index)
		s.mu.Unlock()
	}
	return n
}
