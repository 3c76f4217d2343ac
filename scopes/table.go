package scopes

import (
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// defaultRoutes is the AgentOS route table (shared/agentos-routes.tsv): one
// "METHOD<TAB>pattern<TAB>scope,scope" line per route, '#' comments. It is data,
// compiled into the binary; TestDefaultsMatchSharedFile keeps it in step.
//
//go:embed agentos-routes.tsv
var defaultRoutes string

// Errors wrapped by *MappingError and *OptionError, for errors.Is.
var (
	ErrBadKey    = errors.New("malformed route key")
	ErrBadScope  = errors.New("malformed scope")
	ErrBadPolicy = errors.New("unknown unmapped-route policy")
)

// Policy is what happens to a route with no entry in the table.
type Policy uint8

// The unmapped-route policies (docs/CONTRACT.md §4, unmapped_routes).
const (
	UnmappedAllow Policy = iota // any authenticated caller passes
	UnmappedDeny                // 403 unless the caller holds the admin scope
)

// ParsePolicy reads "allow" or "deny".
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "allow":
		return UnmappedAllow, nil
	case "deny":
		return UnmappedDeny, nil
	}
	return 0, fmt.Errorf("%w: %q (want \"allow\" or \"deny\")", ErrBadPolicy, s)
}

// String returns "allow", "deny", or a diagnostic for an out-of-range value.
func (p Policy) String() string {
	switch p {
	case UnmappedAllow:
		return "allow"
	case UnmappedDeny:
		return "deny"
	}
	return "Policy(" + strconv.Itoa(int(p)) + ")"
}

// MarshalText writes the policy as "allow" or "deny".
func (p Policy) MarshalText() ([]byte, error) {
	if p > UnmappedDeny {
		return nil, fmt.Errorf("%w: %d", ErrBadPolicy, p)
	}
	return []byte(p.String()), nil
}

// UnmarshalText reads "allow" or "deny", so a Policy can be a config field.
func (p *Policy) UnmarshalText(b []byte) error {
	v, err := ParsePolicy(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Mapping is one route-table entry: the key "METHOD /pattern" and the scopes the
// route requires, all of them ([] or nil: none needed, a credential still is).
type Mapping struct {
	Key    string
	Scopes []string
}

// Defaults returns the embedded AgentOS route table, in file order. A fresh
// slice on every call: the caller may modify it.
func Defaults() []Mapping {
	m, err := parseRoutes(defaultRoutes)
	if err != nil {
		// The embedded file is tested (TestDefaults); an error here would be a
		// build defect, which Compile reports. Fail closed: no defaults.
		return nil
	}
	return m
}

// parseRoutes reads the TSV route table.
func parseRoutes(tsv string) ([]Mapping, error) {
	var out []Mapping
	for n, line := range strings.Split(tsv, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "\t")
		if len(fields) < 2 || len(fields) > 3 {
			return nil, fmt.Errorf("default route table line %d: want METHOD<TAB>pattern<TAB>scopes, got %d fields", n+1, len(fields))
		}
		m := Mapping{Key: fields[0] + " " + fields[1], Scopes: []string{}}
		if len(fields) == 3 && fields[2] != "" {
			m.Scopes = strings.Split(fields[2], ",")
		}
		out = append(out, m)
	}
	return out, nil
}

// Options configures Compile.
type Options struct {
	AdminScope string    // the scope that grants everything; "" means DefaultAdminScope
	Unmapped   Policy    // routes with no entry
	Custom     []Mapping // scope_mappings, in the configuration file's order
	// Interfaces are the AgentOS interfaces mounted upstream, prefixes
	// resolved (DefaultPrefix): their routes follow the defaults.
	Interfaces []Interface
}

// MappingError is one problem with one route-table entry.
type MappingError struct {
	Key   string // the mapping's key as written
	Index int    // index of the offending scope, or -1 when the key itself is wrong
	Msg   string
	Err   error // ErrBadKey, ErrBadPattern or ErrBadScope
}

// Error reads `"GET /x": msg` or, for a scope, `"GET /x"[1]: msg`.
func (e *MappingError) Error() string {
	if e.Index < 0 {
		return strconv.Quote(e.Key) + ": " + e.Msg
	}
	return strconv.Quote(e.Key) + "[" + strconv.Itoa(e.Index) + "]: " + e.Msg
}

// Unwrap returns the sentinel error the problem is a case of.
func (e *MappingError) Unwrap() error { return e.Err }

// OptionError is a problem with an Options field other than Custom.
type OptionError struct {
	Option string // the configuration name: "admin_scope" or "unmapped_routes"
	Msg    string
	Err    error // ErrBadScope or ErrBadPolicy
}

// Error reads `admin_scope: msg`.
func (e *OptionError) Error() string { return e.Option + ": " + e.Msg }

// Unwrap returns the sentinel error the problem is a case of.
func (e *OptionError) Unwrap() error { return e.Err }

// Rule is one compiled route-table entry.
type Rule struct {
	Key     string   // "METHOD /pattern" as written
	Method  string   // upper case, never HEAD
	Pattern string   // the glob
	Scopes  []string // required scopes as written, in order; empty = none needed
	Custom  bool     // from Options.Custom (a replaced default counts as custom)
	// Interface is the type of the interface that added the rule ("" for a
	// default or a new custom key); a custom mapping that replaces an
	// interface route keeps it.
	Interface string
}

// Table is a compiled route table with its admin scope and unmapped policy. It
// is immutable and safe for concurrent use.
type Table struct {
	admin    string
	unmapped Policy
	rules    []entry
	methods  []methodIndex
	// a2a are the prefixes under which /agents/<id>/... names a resource
	// too: "/a2a" always, and each a2a interface's (resourceOf).
	a2a []string
}

// entry is a Rule with its compiled scopes.
type entry struct {
	Rule
	reqs []required
}

type reqKind uint8

const (
	reqGlobal reqKind = iota // resource:action, per-resource scopes count on paths of its family
	reqExact                 // resource:<id>:action or resource:*:action, met as written
	reqAdmin                 // the admin scope itself
)

// required is one compiled required scope.
type required struct {
	raw  string // as written, for the explanation and the 403 detail
	fam  string // resource with the legacy alias applied
	id   string // reqExact only
	act  string
	kind reqKind
}

// methodIndex holds the rules of one method: exact keys, then patterns in
// table order.
type methodIndex struct {
	method string
	exact  map[string]int // pattern → rule index: docs/CONTRACT.md §5, an exact key wins
	globs  []globRule     // patterns with metacharacters, in table order
}

type globRule struct {
	prefix string // the glob's leading literal: a cheap first test
	glob   Glob
	rule   int
}

// Compile builds the table: the embedded defaults, with each custom mapping
// whose key equals a default's replacing it in place and the other custom keys
// after the defaults in their order (docs/CONTRACT.md §5). It reports every problem, each
// a *MappingError or *OptionError, joined with errors.Join.
func Compile(o Options) (*Table, error) {
	var errs []error
	admin := o.AdminScope
	if admin == "" {
		admin = DefaultAdminScope
	}
	if !validAdminScope(admin) {
		errs = append(errs, &OptionError{Option: "admin_scope", Err: ErrBadScope,
			Msg: fmt.Sprintf("%q must be non-empty, without white space or control characters", admin)})
	}
	if o.Unmapped > UnmappedDeny {
		errs = append(errs, &OptionError{Option: "unmapped_routes", Err: ErrBadPolicy,
			Msg: fmt.Sprintf("%s is neither allow nor deny", o.Unmapped)})
	}
	defaults, err := parseRoutes(defaultRoutes)
	if err != nil {
		errs = append(errs, err)
	}

	// docs/CONTRACT.md §5: the defaults, then the interfaces' routes as
	// AgentOS merges them, then the new custom keys; a custom key equal to
	// an earlier one replaces it in place.
	merged := make([]Mapping, len(defaults), len(defaults)+len(o.Custom))
	copy(merged, defaults)
	origin := make([]string, len(defaults), cap(merged))
	at := make(map[string]int, cap(merged)) // key → index in merged
	for i, m := range defaults {
		at[m.Key] = i
	}
	for i, in := range o.Interfaces {
		if ie := checkInterface(i, in); len(ie) > 0 {
			errs = append(errs, ie...)
			continue
		}
		for _, m := range in.Routes() {
			if j, ok := at[m.Key]; ok {
				errs = append(errs, &InterfaceError{Index: i, Field: "prefix",
					Msg: fmt.Sprintf("%q adds %q, which the table has already (from %s)", in.Prefix, m.Key, originName(origin[j]))})
				break
			}
			at[m.Key] = len(merged)
			merged = append(merged, m)
			origin = append(origin, in.Type)
		}
	}
	custom := make([]bool, len(merged), len(merged)+len(o.Custom))
	seen := make(map[string]bool, len(o.Custom))
	for _, m := range o.Custom {
		if seen[m.Key] {
			errs = append(errs, &MappingError{Key: m.Key, Index: -1, Err: ErrBadKey, Msg: "duplicate key"})
			continue
		}
		seen[m.Key] = true
		if i, ok := at[m.Key]; ok {
			merged[i] = m
			custom[i] = true
			continue
		}
		at[m.Key] = len(merged)
		merged = append(merged, m)
		custom = append(custom, true)
		origin = append(origin, "")
	}

	t := &Table{admin: admin, unmapped: o.Unmapped, rules: make([]entry, 0, len(merged)), a2a: []string{"/a2a"}}
	for _, in := range o.Interfaces {
		if in.Type == InterfaceA2A && in.Prefix != "" && !slices.Contains(t.a2a, in.Prefix) {
			t.a2a = append(t.a2a, in.Prefix)
		}
	}
	for i, m := range merged {
		e, g, mErrs := compileEntry(m, admin)
		if len(mErrs) > 0 {
			errs = append(errs, mErrs...)
			continue
		}
		e.Custom, e.Interface = custom[i], origin[i]
		t.rules = append(t.rules, e)
		t.index(len(t.rules)-1, g)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// originName names where a route came from, for an error message.
func originName(iface string) string {
	if iface == "" {
		return "the default table"
	}
	return "the " + iface + " interface"
}

// compileEntry checks and compiles one mapping.
func compileEntry(m Mapping, admin string) (entry, Glob, []error) {
	var errs []error
	bad := func(index int, sentinel error, format string, args ...any) {
		errs = append(errs, &MappingError{Key: m.Key, Index: index, Err: sentinel, Msg: fmt.Sprintf(format, args...)})
	}
	method, pattern, ok := strings.Cut(m.Key, " ")
	var g Glob
	switch {
	case !ok || method == "" || !strings.HasPrefix(pattern, "/"):
		bad(-1, ErrBadKey, `want "METHOD /path"`)
	case !isUpperToken(method):
		bad(-1, ErrBadKey, "method %q must be upper-case letters", method)
	case method == "HEAD":
		// docs/CONTRACT.md §5: HEAD is checked exactly as GET.
		bad(-1, ErrBadKey, "HEAD is checked as GET: map GET %s instead", pattern)
	case hasControlOrInvalid(pattern):
		bad(-1, ErrBadKey, "path holds a control character or invalid UTF-8")
	default:
		var err error
		if g, err = CompileGlob(pattern); err != nil {
			bad(-1, err, "%v", err)
		}
	}
	reqs := make([]required, 0, len(m.Scopes))
	for i, s := range m.Scopes {
		if s == admin {
			reqs = append(reqs, required{raw: s, kind: reqAdmin})
			continue
		}
		sc := ParseScope(s)
		switch sc.Kind {
		case KindGlobal:
			reqs = append(reqs, required{raw: s, fam: sc.Family(), act: sc.Action, kind: reqGlobal})
		case KindWildcard, KindResource:
			reqs = append(reqs, required{raw: s, fam: sc.Family(), id: sc.ID, act: sc.Action, kind: reqExact})
		default:
			bad(i, ErrBadScope, "scope %q is not resource:action, resource:<id>:action or the admin scope", s)
		}
	}
	if len(errs) > 0 {
		return entry{}, Glob{}, errs
	}
	scopes := make([]string, len(m.Scopes))
	copy(scopes, m.Scopes)
	return entry{
		Rule: Rule{Key: m.Key, Method: method, Pattern: pattern, Scopes: scopes},
		reqs: reqs,
	}, g, nil
}

func isUpperToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return s != ""
}

func hasControlOrInvalid(s string) bool {
	for _, r := range s {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\uFFFD' {
			return true
		}
	}
	return false
}

// index files rule i under its method.
func (t *Table) index(i int, g Glob) {
	r := &t.rules[i]
	var mi *methodIndex
	for k := range t.methods {
		if t.methods[k].method == r.Method {
			mi = &t.methods[k]
			break
		}
	}
	if mi == nil {
		t.methods = append(t.methods, methodIndex{method: r.Method, exact: map[string]int{}})
		mi = &t.methods[len(t.methods)-1]
	}
	// Every key is an exact key, even one with metacharacters: a path equal to
	// the pattern text takes that rule before any pattern is tried.
	mi.exact[r.Pattern] = i
	if !g.Literal() {
		mi.globs = append(mi.globs, globRule{prefix: g.prefix(), glob: g, rule: i})
	}
}

// AdminScope returns the scope that grants everything.
func (t *Table) AdminScope() string { return t.admin }

// Unmapped returns the unmapped-route policy.
func (t *Table) Unmapped() Policy { return t.unmapped }

// Rules returns the table in order (copies: the table stays immutable).
func (t *Table) Rules() []Rule {
	out := make([]Rule, len(t.rules))
	for i := range t.rules {
		out[i] = t.rules[i].Rule
		out[i].Scopes = slices.Clone(t.rules[i].Scopes)
	}
	return out
}
