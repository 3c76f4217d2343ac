package serviceaccount

import (
	"container/list"
	"sync"
	"time"
)

// verifiedCache is a bounded LRU of verified accounts keyed by the token's SHA-256 (never
// the token), like AgentOS's _VerificationCache: an entry older than ttl is stale, and an
// account whose expiry has come is dropped even within the ttl.
type verifiedCache struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	entries map[[32]byte]*list.Element
	order   *list.List // front = least recently used; values are *cacheEntry
}

type cacheEntry struct {
	key      [32]byte
	account  Account
	cachedAt time.Time
}

func newVerifiedCache(ttl time.Duration, size int) *verifiedCache {
	return &verifiedCache{ttl: ttl, max: size, entries: make(map[[32]byte]*list.Element), order: list.New()}
}

// get returns the cached account of key when it is at most ttl old and not expired at
// now. A negative age (a clock without monotonic reading stepping back) counts as stale.
func (c *verifiedCache) get(key [32]byte, now time.Time) (Account, bool) {
	if c.ttl <= 0 {
		return Account{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return Account{}, false
	}
	e := el.Value.(*cacheEntry)
	age := now.Sub(e.cachedAt)
	if age < 0 || age > c.ttl || e.account.expired(now) {
		c.order.Remove(el)
		delete(c.entries, key)
		return Account{}, false
	}
	c.order.MoveToBack(el)
	return cloneAccount(e.account), true
}

func (c *verifiedCache) put(key [32]byte, a Account, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*cacheEntry)
		e.account, e.cachedAt = a, now
		c.order.MoveToBack(el)
		return
	}
	c.entries[key] = c.order.PushBack(&cacheEntry{key: key, account: a, cachedAt: now})
	for c.order.Len() > c.max {
		oldest := c.order.Front()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheEntry).key)
	}
}

func (c *verifiedCache) remove(key [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.order.Remove(el)
		delete(c.entries, key)
	}
}

func (c *verifiedCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// failureLimiter counts failed lookups per client over a sliding window, like AgentOS's
// _FailedLookupLimiter: a failure is throttled when the client already has max failures
// within the window (a throttled failure is not recorded, so the window drains); memory is
// bounded by maxClients keys of at most max timestamps each, the least recently failing
// client forgotten first.
type failureLimiter struct {
	max      int
	window   time.Duration
	maxKeys  int
	mu       sync.Mutex
	clients  map[string]*list.Element
	order    *list.List // front = least recently failing; values are *clientFailures
	disabled bool
}

type clientFailures struct {
	key   string
	times []time.Time // ascending
}

func newFailureLimiter(maxFailures int, window time.Duration, maxKeys int) *failureLimiter {
	return &failureLimiter{
		max: maxFailures, window: window, maxKeys: maxKeys, disabled: maxFailures == 0,
		clients: make(map[string]*list.Element), order: list.New(),
	}
}

// fail records a failed lookup of key at now, or reports that key is throttled.
func (l *failureLimiter) fail(key string, now time.Time) (throttled bool) {
	if l.disabled {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.clients[key]
	var cf *clientFailures
	if ok {
		cf = el.Value.(*clientFailures)
		cf.times = fresh(cf.times, now, l.window)
		l.order.MoveToBack(el)
		if len(cf.times) >= l.max {
			return true
		}
	} else {
		cf = &clientFailures{key: key}
		l.clients[key] = l.order.PushBack(cf)
		for l.order.Len() > l.maxKeys {
			oldest := l.order.Front()
			l.order.Remove(oldest)
			delete(l.clients, oldest.Value.(*clientFailures).key)
		}
	}
	cf.times = append(cf.times, now)
	return false
}

// fresh drops the timestamps older than window at now (a failure exactly window old has
// left it, as AgentOS keeps only t > now - window). A timestamp after now (a clock
// stepping back) is kept: it still counts.
func fresh(times []time.Time, now time.Time, window time.Duration) []time.Time {
	i := 0
	for i < len(times) && now.Sub(times[i]) >= window {
		i++
	}
	if i == 0 {
		return times
	}
	return append(times[:0], times[i:]...)
}

func (l *failureLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.order.Len()
}
