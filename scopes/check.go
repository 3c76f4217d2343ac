package scopes

import (
	"slices"
	"strings"
)

// Result is the scope decision for one request, with its reason. The zero Result
// denies. A Result keeps a copy of the caller's Set (which is immutable), so its
// explanation (Grants, Matched, Missing) stays valid on its own.
type Result struct {
	Allowed  bool
	Unmapped bool  // no rule matched: Allowed follows the policy (deny: unless admin)
	Admin    bool  // allowed because the caller holds the admin scope
	Rule     *Rule // the matched rule; nil when Unmapped. Shared: do not modify.

	// Listing is set when the request was allowed through the listing filter:
	// a GET of /agents, /teams or /workflows by a caller with only per-resource
	// scopes; AccessibleIDs are then the ids it may see (never empty).
	Listing       bool
	AccessibleIDs []string

	// The resource context of the path: Family is agents, teams or workflows
	// (also under /a2a/), or ""; ID is the next segment, or "".
	Family, ID string

	set        Set
	entry      *entry
	adminScope string // the table's admin scope, for the explanation
	collection bool   // GET (or HEAD) of /agents, /teams or /workflows
}

// Check decides whether the caller may call method on path. The path must be
// normalised already (docs/CONTRACT.md §5: decoded once, no query, no trailing slash
// except "/"); HEAD is checked as GET. A nil Set is a caller without scopes.
// Check does not allocate, except for AccessibleIDs on a filtered listing.
//
// docs/CONTRACT.md §5: an exact key wins, then the first matching pattern in table
// order; the admin scope grants everything; a route with no required scope needs
// none; an unmapped route follows the policy.
func (t *Table) Check(method, path string, s *Set) Result {
	var r Result
	if t == nil {
		return r // fail closed
	}
	if s != nil {
		r.set = *s
	}
	r.adminScope = t.admin
	if method == "HEAD" {
		method = "GET"
	}
	r.Family, r.ID, r.collection = t.resourceOf(path)
	r.collection = r.collection && method == "GET"
	e := t.lookup(method, path)
	if e == nil {
		r.Unmapped = true
		r.Admin = t.unmapped == UnmappedDeny && r.set.admin
		r.Allowed = t.unmapped == UnmappedAllow || r.Admin
		return r
	}
	r.entry, r.Rule = e, &e.Rule
	if len(e.reqs) == 0 {
		r.Allowed = true
		return r
	}
	if r.set.admin {
		r.Allowed, r.Admin = true, true
		return r
	}
	filtered := false
	for i := range e.reqs {
		q := &e.reqs[i]
		if r.set.meet(q, r.Family, r.ID) >= 0 {
			continue
		}
		// docs/CONTRACT.md §5: a listing whose route requires the path family's
		// two-part scope passes with the caller's per-resource scopes of that
		// family and action, and the upstream sees only those ids.
		if r.collection && q.kind == reqGlobal && q.fam == r.Family && r.set.hasResource(q.fam, q.act) {
			filtered = true
			continue
		}
		return r // denied
	}
	if !filtered {
		r.Allowed = true
		return r
	}
	ids := r.listingIDs()
	if len(ids) == 0 {
		return r // several listing scopes with no id in common
	}
	r.Allowed, r.Listing, r.AccessibleIDs = true, true, ids
	return r
}

// lookup finds the rule for method and path, or nil.
func (t *Table) lookup(method, path string) *entry {
	for k := range t.methods {
		mi := &t.methods[k]
		if mi.method != method {
			continue
		}
		if i, ok := mi.exact[path]; ok {
			return &t.rules[i]
		}
		for j := range mi.globs {
			g := &mi.globs[j]
			if strings.HasPrefix(path, g.prefix) && g.glob.match(path) {
				return &t.rules[g.rule]
			}
		}
		return nil
	}
	return nil
}

// resourceOf returns the resource family and id of path (docs/CONTRACT.md
// §5: the segment after /agents/, /teams/, /workflows/, also under /a2a/ and
// under the prefix of every a2a interface), and whether path is the family's
// collection (/agents, /teams, /workflows, not under an a2a prefix). It does
// not allocate.
func (t *Table) resourceOf(path string) (fam, id string, collection bool) {
	p, a2a := path, false
	for _, pre := range t.a2a {
		if len(path) > len(pre) && path[len(pre)] == '/' && strings.HasPrefix(path, pre) {
			p, a2a = path[len(pre):], true
			break
		}
	}
	rest, ok := strings.CutPrefix(p, "/")
	if !ok {
		return "", "", false
	}
	seg, tail, more := strings.Cut(rest, "/")
	switch seg {
	case familyAgents:
		fam = familyAgents
	case familyTeams:
		fam = familyTeams
	case familyWorkflows:
		fam = familyWorkflows
	default:
		return "", "", false
	}
	if !more {
		return fam, "", !a2a
	}
	id, _, _ = strings.Cut(tail, "/")
	return fam, id, false
}

// listingIDs returns the ids the caller may see: for each required scope met
// through the listing filter, the ids of its per-resource scopes; with several
// such scopes, the ids common to all, in the caller's order.
func (r *Result) listingIDs() []string {
	var ids []string
	first := true
	for i := range r.entry.reqs {
		q := &r.entry.reqs[i]
		if !r.viaListing(q) {
			continue
		}
		if first {
			ids = r.set.resourceIDs(nil, q.fam, q.act)
			first = false
			continue
		}
		mine := r.set.resourceIDs(nil, q.fam, q.act)
		kept := ids[:0]
		for _, id := range ids {
			if contains(mine, id) {
				kept = append(kept, id)
			}
		}
		ids = kept
	}
	return ids
}

// viaListing reports whether q can only be met through the listing filter on
// this request: the path is the family's collection, read with GET, q is that
// family's two-part scope and no caller scope meets it directly.
func (r *Result) viaListing(q *required) bool {
	return r.collection && q.kind == reqGlobal && q.fam == r.Family && r.set.meet(q, r.Family, r.ID) < 0
}

// Grant explains one required scope of the matched rule.
type Grant struct {
	Required string // as written in the rule
	// By is the caller scope that met it: the admin scope for an admin, and for
	// a filtered listing the caller's per-resource scopes, space-separated.
	// "" when the scope is missing.
	By      string
	Listing bool // met through the listing filter
}

// Met reports whether the scope was met.
func (g Grant) Met() bool { return g.By != "" }

// Grants explains each required scope of the matched rule, in order: which
// caller scope met it, or that it is missing. Nil when no rule matched.
func (r *Result) Grants() []Grant {
	if r.entry == nil || len(r.entry.reqs) == 0 {
		return nil
	}
	out := make([]Grant, len(r.entry.reqs))
	for i := range r.entry.reqs {
		q := &r.entry.reqs[i]
		g := &out[i]
		g.Required = q.raw
		switch {
		case r.set.admin:
			g.By = r.adminScope
		case r.viaListing(q) && r.set.hasResource(q.fam, q.act):
			var by []string
			for k := range r.set.held {
				h := &r.set.held[k]
				if h.kind == KindResource && h.fam == q.fam && h.act == q.act && (!r.Listing || contains(r.AccessibleIDs, h.id)) {
					by = append(by, h.raw)
				}
			}
			g.By, g.Listing = strings.Join(by, " "), true
		default:
			if k := r.set.meet(q, r.Family, r.ID); k >= 0 {
				g.By = r.set.held[k].raw
			}
		}
	}
	if !r.Allowed && !slices.ContainsFunc(out, func(g Grant) bool { return !g.Met() }) {
		// Every scope had per-resource ids but no id was common to all of the
		// listing's scopes: those are what is missing.
		for i := range out {
			if out[i].Listing {
				out[i].By = ""
			}
		}
	}
	return out
}

// Matched returns, for each met required scope, "required=caller scope"
// (for a listing, the caller's per-resource scopes, space-separated).
func (r *Result) Matched() []string {
	var out []string
	for _, g := range r.Grants() {
		if g.Met() {
			out = append(out, g.Required+"="+g.By)
		}
	}
	return out
}

// Missing returns the required scopes no caller scope met, in rule order.
func (r *Result) Missing() []string {
	if r.Allowed {
		return nil
	}
	var out []string
	for _, g := range r.Grants() {
		if !g.Met() {
			out = append(out, g.Required)
		}
	}
	return out
}

// DeniedScopes returns the scopes the 403 detail lists: every required scope of
// the matched rule as written, met or not ("Insufficient permissions. Required
// scope(s): a, b", docs/CONTRACT.md §5). Nil when allowed or when no rule matched.
func (r *Result) DeniedScopes() []string {
	if r.Allowed || r.Rule == nil {
		return nil
	}
	return append([]string(nil), r.Rule.Scopes...)
}
