// Package scopes is the AgentOS RBAC engine: the scope grammar, the route table
// (the embedded AgentOS defaults merged with custom scope_mappings), the
// fnmatch-style route globs, and the decision for one method and path by one
// caller, together with its reason (the matched rule, and for each required
// scope the caller scope that met it or the fact that it is missing).
//
// It is pure: standard library only, no I/O, clock, logger, context, globals or
// init. The default route table is embedded data. A denial is a Result, never an
// error; errors only report a bad configuration (Compile, CompileGlob).
//
// It never normalises or validates a request path (the caller does, docs/CONTRACT.md §5)
// and never sees a token: it receives the caller's scope strings.
package scopes

import (
	"unicode"
	"unicode/utf8"
)

// DefaultAdminScope is the scope that grants everything unless Options.AdminScope
// names another one.
const DefaultAdminScope = "agent_os:admin"

// The resource families for which per-resource scopes (resource:<id>:action)
// count against the id in the path (docs/CONTRACT.md §5).
const (
	familyAgents    = "agents"
	familyTeams     = "teams"
	familyWorkflows = "workflows"
)

// docs/CONTRACT.md §5: "system:" is a legacy alias of "config:".
const (
	legacyConfig = "system"
	familyConfig = "config"
)

// Kind is the shape of a scope.
type Kind uint8

// The scope shapes. KindUnknown is every other string: it matches nothing.
const (
	KindUnknown  Kind = iota // not a scope of the grammar: matches nothing
	KindGlobal               // resource:action, every resource of the family
	KindWildcard             // resource:*:action, the same as KindGlobal
	KindResource             // resource:<id>:action, one resource
)

// String returns a stable lower-case name for logs.
func (k Kind) String() string {
	switch k {
	case KindGlobal:
		return "global"
	case KindWildcard:
		return "wildcard"
	case KindResource:
		return "resource"
	default:
		return "unknown"
	}
}

// Scope is one scope string split into its parts. The zero Scope is KindUnknown.
type Scope struct {
	Resource string // as written: "system" stays "system" (see Family)
	ID       string // "" for KindGlobal, "*" for KindWildcard, the id for KindResource
	Action   string
	Kind     Kind
}

// ParseScope splits s into resource, id and action. Resource and action are
// non-empty, not "*", and free of ':', white space and control characters; an id
// is non-empty, free of ':' and control characters (it may hold spaces, as a
// decoded path segment can) and "*" means every resource. Anything else, invalid
// UTF-8 included, is a KindUnknown scope with only Kind set.
// For any scope that is not KindUnknown, ParseScope(s).String() == s.
func ParseScope(s string) Scope {
	first := indexColon(s, 0)
	if first < 0 {
		return Scope{}
	}
	second := indexColon(s, first+1)
	if second < 0 {
		res, act := s[:first], s[first+1:]
		if !validName(res) || !validName(act) {
			return Scope{}
		}
		return Scope{Resource: res, Action: act, Kind: KindGlobal}
	}
	if indexColon(s, second+1) >= 0 {
		return Scope{} // four parts or more
	}
	res, id, act := s[:first], s[first+1:second], s[second+1:]
	if !validName(res) || !validName(act) || !validID(id) {
		return Scope{}
	}
	if id == "*" {
		return Scope{Resource: res, ID: id, Action: act, Kind: KindWildcard}
	}
	return Scope{Resource: res, ID: id, Action: act, Kind: KindResource}
}

// Family is the resource with the legacy alias applied: "system" reads "config".
func (s Scope) Family() string {
	return family(s.Resource)
}

// String reassembles the scope; it is "" for KindUnknown.
func (s Scope) String() string {
	switch s.Kind {
	case KindGlobal:
		return s.Resource + ":" + s.Action
	case KindWildcard, KindResource:
		return s.Resource + ":" + s.ID + ":" + s.Action
	default:
		return ""
	}
}

// family applies the legacy alias. It returns a constant or its argument, so it
// never allocates.
func family(resource string) string {
	if resource == legacyConfig {
		return familyConfig
	}
	return resource
}

func indexColon(s string, from int) int {
	for i := from; i < len(s); i++ {
		if s[i] == ':' {
			return i
		}
	}
	return -1
}

// validName reports whether s is a usable resource or action.
func validName(s string) bool {
	if s == "" || s == "*" {
		return false
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && w == 1 || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
		i += w
	}
	return true
}

// validID reports whether s is a usable resource id: like a name, but spaces are
// allowed (a path segment "sales%20bot" is the id "sales bot").
func validID(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < ' ' || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && w == 1 || unicode.IsControl(r) {
			return false
		}
		i += w
	}
	return true
}

// validAdminScope reports whether s can be the admin scope: any non-empty valid
// UTF-8 string without white space or control characters (a space-separated
// scopes claim could never carry anything else).
func validAdminScope(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}
