package authz

import (
	"hash/maphash"
	"strings"
	"sync/atomic"

	"github.com/agentos-authz/agentos-authz/scopes"
)

// scopeSets interns the parsed scopes of the callers (the cached
// decision): a decision needs the caller's scopes.Set, and parsing it is a
// fifth of a cached decision's time and its largest allocation, while the
// verified-token cache keeps only the scopes' text (a parsed Set per cached
// token would not fit the memory budget). Tokens of one deployment carry
// few distinct scope lists (roles), so the snapshot keeps each list seen
// lately parsed once, shared by every decision that meets it again.
//
// It is a fixed table of two-way sets of slots, each an atomic pointer to
// an immutable entry: a lookup is one hash and at most two loads and string
// comparisons, with no lock; a miss parses and replaces one of the two
// slots. Its memory is bounded by the slot count whatever the traffic; a
// workload with more distinct lists than slots only parses more often, as
// every decision did before. The key is the whole x-agentos-scopes value,
// compared in full, so two lists never share an entry.
type scopeSets struct {
	seed  maphash.Seed
	slots []atomic.Pointer[internedSet]
	mask  uint64 // len(slots)-1, with its lowest bit clear (pairs)
	// none is the Set of a caller without scopes.
	none scopes.Set
}

// internedSet is one parsed scope list; never modified once published.
type internedSet struct {
	key string // the x-agentos-scopes value, owned by this entry
	set scopes.Set
}

// scopeSetSlots bounds the interned lists (a few hundred KiB at most).
const scopeSetSlots = 1024

func newScopeSets(slots int) *scopeSets {
	n := 2
	for n < slots {
		n *= 2
	}
	return &scopeSets{seed: maphash.MakeSeed(), slots: make([]atomic.Pointer[internedSet], n), mask: uint64(n-1) &^ 1}
}

// set returns the parsed scopes of p, checked against t (the snapshot's
// table, the one every entry was parsed with). The result is shared and
// must not be modified; scopes.Set is immutable.
func (c *scopeSets) set(p *principal, t *scopes.Table) *scopes.Set {
	if p.extra != nil && p.extra.list != nil {
		// A scope holding a space: its text is not the list (rare).
		s := p.parseScopes(t)
		return &s
	}
	if p.scopes == "" {
		return &c.none
	}
	return &c.entry(p.scopes, t).set
}

// share returns p with its scopes text taken from the interned entry of
// its list, for the verified-token cache: the cached principals of one
// list then hold one copy of its text, not one each (the text is most of
// a principal's bytes; the memory budget in the README's Performance section).
func (c *scopeSets) share(p principal, t *scopes.Table) principal {
	if p.scopes == "" || p.extra != nil && p.extra.list != nil {
		return p
	}
	e := c.entry(p.scopes, t)
	// A new allocation for the ids alone: p's own text shared theirs.
	ids := p.userID + p.sessionID
	return principal{userID: ids[:len(p.userID)], sessionID: ids[len(p.userID):], scopes: e.key, extra: p.extra}
}

// entry returns the interned entry of the scope list text, parsing and
// publishing it on a miss.
func (c *scopeSets) entry(text string, t *scopes.Table) *internedSet {
	h := maphash.String(c.seed, text)
	i := h & c.mask
	for j := range uint64(2) {
		if e := c.slots[i|j].Load(); e != nil && e.key == text {
			return e
		}
	}
	// A copy of the text, so the entry keeps no other part of the
	// principal (user and session ids share its allocation).
	e := &internedSet{key: strings.Clone(text)}
	e.set = parseScopeText(e.key, t)
	// Replace the slot the hash's top bit picks: two lists that meet in
	// one pair can both stay, and a stale one ages out.
	c.slots[i|(h>>63)].Store(e)
	return e
}

// parseScopeText parses a space-separated scope list with t. For up to 16
// scopes the split list lives on the stack: the Set's array is the only
// allocation, and its strings are substrings of text.
func parseScopeText(text string, t *scopes.Table) scopes.Set {
	var buf [16]string
	raw := buf[:0]
	for {
		i := strings.IndexByte(text, ' ')
		if i < 0 {
			raw = append(raw, text)
			break
		}
		raw = append(raw, text[:i])
		text = text[i+1:]
	}
	return t.Parse(raw)
}
