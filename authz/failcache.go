package authz

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"

	"github.com/agentos-authz/agentos-authz/authz/internal/jwtauth"
)

// This file owns the failed-verification cache: refusals that cannot
// change while the key set stays the same, remembered so that a token
// replayed after its refusal (a forged signature, an expired or
// wrong-audience token a client keeps sending) costs no signature check.
//
// Safety rules, each enforced here or by jwtauth.Settled:
//   - only a settled failure is stored (jwtauth.Verifier.VerifySettled): a
//     signature no key verifies, when no kid refetch was involved; claims
//     refused after the signature verified. A failure that time can undo
//     (nbf or iat in the future) is never stored, nor a cancelled check,
//     nor the cheap refusals found before any key is tried;
//   - an entry answers with the Failure the verification returned: the
//     same reason and detail, so the same Decision;
//   - an entry is tied to the key set (jwtauth.Generation) current before
//     its verification: under any other it is a miss and is dropped, so a
//     key rotation has every remembered token verified again;
//   - an entry serves only while the clock is at or after its verification
//     (a clock set back may make an expired token valid again) and before
//     its Until (a wrong-audience token expires, and is then refused as
//     expired), and within cache_ttl of its verification;
//   - the key is the token's SHA-256, as in the verified-token cache
//     (tokencache.go): a hit needs the whole digest equal;
//   - the cache belongs to one snapshot, and is bounded (failCacheMax
//     entries, CLOCK eviction per shard, as the token cache).

// failCacheMax bounds the failed-verification cache: replayed refusals are
// a few tokens, and a flood of distinct forged tokens costs a signature
// check each whatever is remembered. At ≈100 bytes an entry, 4096 entries
// are ≈0.4 MiB, inside the fixed part of the memory budget.
const (
	failCacheMax    = 4096
	failCacheShards = 8
)

type failEntry struct {
	digest [sha256.Size]byte
	keys   jwtauth.Generation
	// at is the verification, to the end of its validity (Unix ns).
	at, to int64
	f      *Failure
	ref    bool // CLOCK reference bit
}

type failShard struct {
	mu    sync.Mutex
	index map[uint64]int32
	slots []failEntry
	limit int
	hand  int
	_     [64]byte
}

// failCache remembers settled verification failures. Safe for concurrent
// use.
type failCache struct {
	shards [failCacheShards]failShard
	ttl    time.Duration
}

// newFailCache makes a cache of at most min(size, failCacheMax) entries,
// each served for at most ttl; nil when size or ttl is 0 (as the token
// cache: jwt.cache_size or jwt.cache_ttl 0 turns caching off).
func newFailCache(size int, ttl time.Duration) *failCache {
	size = min(size, failCacheMax)
	if size <= 0 || ttl <= 0 {
		return nil
	}
	c := &failCache{ttl: ttl}
	for i := range c.shards {
		c.shards[i].limit = max(1, size/failCacheShards)
		c.shards[i].index = make(map[uint64]int32)
	}
	return c
}

func (c *failCache) shard(d *[sha256.Size]byte) (*failShard, uint64) {
	return &c.shards[d[8]%failCacheShards], binary.LittleEndian.Uint64(d[:8])
}

// get returns the failure remembered for d under keys, if now is inside
// the entry's validity. An entry out of it is dropped.
func (c *failCache) get(d *[sha256.Size]byte, keys jwtauth.Generation, now time.Time) (*Failure, bool) {
	if c == nil {
		return nil, false
	}
	s, k := c.shard(d)
	at := now.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[k]
	if !ok {
		return nil, false
	}
	e := &s.slots[i]
	if e.digest != *d {
		return nil, false
	}
	if e.keys != keys || at < e.at || at >= e.to {
		// Another key set, a clock set back, or past its bound: verify
		// afresh.
		delete(s.index, k)
		*e = failEntry{}
		return nil, false
	}
	e.ref = true
	return e.f, true
}

// put remembers f, the settled failure st of the token d verified under
// keys; now is the clock read after the verification.
func (c *failCache) put(d *[sha256.Size]byte, keys jwtauth.Generation, now time.Time, f *Failure, st jwtauth.Settled) {
	if c == nil || !st.OK {
		return
	}
	to := now.Add(c.ttl).UnixNano()
	if !st.Until.IsZero() {
		to = min(to, st.Until.UnixNano())
	}
	at := now.UnixNano()
	if at >= to {
		return
	}
	s, k := c.shard(d)
	e := failEntry{digest: *d, keys: keys, at: at, to: to, f: f}
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.index[k]; ok {
		s.slots[i] = e
		return
	}
	if len(s.slots) < s.limit {
		if s.slots == nil {
			s.slots = make([]failEntry, 0, s.limit)
		}
		s.slots = append(s.slots, e)
		s.index[k] = int32(len(s.slots) - 1)
		return
	}
	// CLOCK: the first slot that is free or unreferenced, clearing the
	// reference bits on the way; after one turn none is set.
	for range 2 * len(s.slots) {
		if s.hand >= len(s.slots) {
			s.hand = 0
		}
		v := &s.slots[s.hand]
		s.hand++
		if v.f != nil && v.ref {
			v.ref = false
			continue
		}
		if v.f != nil {
			delete(s.index, binary.LittleEndian.Uint64(v.digest[:8]))
		}
		*v = e
		s.index[k] = int32(s.hand - 1)
		return
	}
}

// len is the number of entries (tests).
func (c *failCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.index)
		s.mu.Unlock()
	}
	return n
}
