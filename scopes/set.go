package scopes

// Set is a caller's scopes, parsed once per request. It is immutable after
// Parse, so one Set may be checked against any number of routes, concurrently.
// The zero Set holds no scope.
type Set struct {
	held  []held
	admin bool
}

// held is one caller scope. fam, id and act are substrings of raw (or the
// constant "config" for the legacy alias), so parsing allocates only the slice.
type held struct {
	raw  string
	fam  string
	id   string
	act  string
	kind Kind
}

// Parse reads the caller's scopes. Every string is kept, in order, for display
// (Scopes); a string of any other shape than the grammar's (see ParseScope)
// matches nothing. The admin scope is recognised exactly as configured. The only
// allocation is the Set's backing array.
func (t *Table) Parse(raw []string) Set {
	if len(raw) == 0 {
		return Set{}
	}
	s := Set{held: make([]held, len(raw))}
	for i, r := range raw {
		h := &s.held[i]
		h.raw = r
		if t != nil && r == t.admin {
			s.admin = true
		}
		sc := ParseScope(r)
		h.kind = sc.Kind
		if sc.Kind != KindUnknown {
			h.fam, h.id, h.act = sc.Family(), sc.ID, sc.Action
		}
	}
	return s
}

// IsAdmin reports whether the caller holds the table's admin scope.
func (s *Set) IsAdmin() bool { return s != nil && s.admin }

// Len is the number of scope strings the caller sent, unknown ones included.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.held)
}

// Scopes returns the caller's scope strings as sent, in order (a new slice).
func (s *Set) Scopes() []string {
	if s == nil || len(s.held) == 0 {
		return nil
	}
	out := make([]string, len(s.held))
	for i := range s.held {
		out[i] = s.held[i].raw
	}
	return out
}

// Has reports whether the caller holds scope exactly as written, reading
// "system:" and "config:" as the same family. It is a plain membership test: the
// admin scope and wildcards imply nothing here (Check applies those rules).
func (s *Set) Has(scope string) bool {
	if s == nil {
		return false
	}
	want := ParseScope(scope)
	for i := range s.held {
		h := &s.held[i]
		if h.raw == scope {
			return true
		}
		if want.Kind != KindUnknown && h.kind == want.Kind && h.fam == want.Family() && h.id == want.ID && h.act == want.Action {
			return true
		}
	}
	return false
}

// meet returns the index of the first caller scope that meets r on a path of
// family fam with resource id (either may be ""), or -1. docs/CONTRACT.md §5:
//   - resource:action is met by itself and resource:*:action; on a path of its
//     own family (agents, teams, workflows) with an id, also by resource:<id>:action;
//   - a three-part required scope is met by the global or wildcard scope of its
//     family and action, or exactly by itself;
//   - the admin scope, as a required scope, only by the admin scope (handled by
//     the caller).
//
// It does not allocate.
func (s *Set) meet(r *required, fam, id string) int {
	if r.kind == reqAdmin {
		return -1
	}
	for i := range s.held {
		h := &s.held[i]
		if h.act != r.act || h.fam != r.fam {
			continue
		}
		switch h.kind {
		case KindGlobal, KindWildcard:
			return i
		case KindResource:
			switch r.kind {
			case reqExact:
				if h.id == r.id {
					return i
				}
			case reqGlobal:
				if id != "" && r.fam == fam && h.id == id {
					return i
				}
			}
		}
	}
	return -1
}

// hasResource reports whether the caller holds any per-resource scope of family
// fam with action act: the listing filter's condition.
func (s *Set) hasResource(fam, act string) bool {
	for i := range s.held {
		h := &s.held[i]
		if h.kind == KindResource && h.act == act && h.fam == fam {
			return true
		}
	}
	return false
}

// resourceIDs appends, in the caller's order and without duplicates, the ids of
// the caller's per-resource scopes of family fam with action act.
func (s *Set) resourceIDs(dst []string, fam, act string) []string {
	for i := range s.held {
		h := &s.held[i]
		if h.kind == KindResource && h.act == act && h.fam == fam && !contains(dst, h.id) {
			dst = append(dst, h.id)
		}
	}
	return dst
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
