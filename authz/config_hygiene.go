package authz

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/agentos-authz/agentos-authz/scopes"
)

// checkMappingKeys reports the scope_mappings keys whose path is not in the
// normal form request paths are matched in (docs/CONTRACT.md §4): such a key
// never matches, and its route falls through to the next pattern or to
// unmapped_routes, which may allow it. The message gives the key to write.
func (c *Config) checkMappingKeys() []error {
	var errs []error
	for _, m := range c.ScopeMappings {
		method, path, ok := strings.Cut(m.Key, " ")
		if !ok || path == "" || path[0] != '/' {
			continue // a malformed key: scopes.Compile names it
		}
		normal, why := normalPattern(path)
		switch {
		case why != "":
			errs = append(errs, &FieldError{Field: mappingPath(m.Key, -1),
				Err: fmt.Errorf("the path %s, so no request path can ever equal it; remove it", why)})
		case normal != path:
			errs = append(errs, &FieldError{Field: mappingPath(m.Key, -1),
				Err: fmt.Errorf("the path is not in normal form, so it never matches a request (paths are matched decoded, without a trailing slash); write %q", method+" "+normal)})
		}
	}
	return errs
}

// normalPattern returns the normal form of a route pattern's path (decoded
// once, no trailing slash except "/"), or why it has none: an empty or dot
// segment, which a request path never has (normalizePath refuses them).
// Glob metacharacters are kept as they are: '?' is a wildcard here, not a
// query.
func normalPattern(p string) (string, string) {
	if strings.Contains(p, "%") {
		d, err := url.PathUnescape(p)
		if err != nil {
			return "", "has an invalid percent escape"
		}
		if strings.Contains(d, "/") && strings.Count(d, "/") != strings.Count(p, "/") {
			return "", "has an encoded \"/\" (%2F)"
		}
		p = d
	}
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	if p == "/" {
		return p, ""
	}
	for _, seg := range strings.Split(p[1:], "/") {
		switch seg {
		case "":
			return "", "has an empty segment (\"//\")"
		case ".", "..":
			return "", "has a dot segment (\"" + seg + "\")"
		}
	}
	return p, ""
}

// Warning is a setting that weakens protection without being an error
// (docs/CONTRACT.md §4): validate prints it, serve logs it at warn, and
// `validate --strict` refuses it.
type Warning struct {
	Field string // the YAML path of the setting
	Msg   string // why it weakens protection
}

// String reads "<field>: <why>".
func (w Warning) String() string { return w.Field + ": " + w.Msg }

// Warnings returns the settings of a valid c that weaken protection, in a
// stable order. The route-table warnings judge the table Load compiled
// (none for a Config not made by Load).
func (c *Config) Warnings() []Warning {
	var out []Warning
	add := func(field, format string, args ...any) {
		out = append(out, Warning{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if c.Authorization != nil && !*c.Authorization && c.JWT.HasSource() {
		add("authorization", "false with a JWT source: tokens are verified but scopes are not checked, "+
			"so any valid token reaches every route")
	}
	if c.JWT.AllowShortHMACSecrets {
		add("jwt.allow_short_hmac_secrets", "true: HMAC secrets shorter than RFC 7518 §3.2 requires are accepted, "+
			"and a short secret can be guessed; replace it with a random one of at least the hash size")
	}
	if c.JWT.Validate != nil && !*c.JWT.Validate {
		add("jwt.validate", "false: token signatures are not verified, anyone can mint a token; development only")
	}
	out = append(out, c.upstreamWarnings()...)
	if c.compiled == nil {
		return out // not made by Load: no route table to judge
	}
	table := c.compiled.table
	if res, _, ok := strings.Cut(table.AdminScope(), ":"); ok && strings.Count(table.AdminScope(), ":") == 1 && routeResource(table, res) {
		add("admin_scope", "%q has the resource:action shape of the route table's %s scopes: "+
			"whoever is given it for %s is granted everything", table.AdminScope(), res, res)
	}
	for i, p := range c.ExcludedRoutes {
		g, err := scopes.CompileGlob(p)
		if err != nil {
			continue
		}
		if rules := table.Overlapping(g); len(rules) > 0 {
			keys := make([]string, 0, 3)
			for _, r := range rules[:min(3, len(rules))] {
				keys = append(keys, r.Key)
			}
			more := ""
			if len(rules) > 3 {
				more = fmt.Sprintf(" and %d more", len(rules)-3)
			}
			add(fmt.Sprintf("excluded_routes[%d]", i), "%q matches routes of the table (%s%s): they are reachable without any credential",
				p, strings.Join(keys, ", "), more)
		}
	}
	for _, s := range table.Shadowed() {
		add(mappingPath(s.Rule.Key, -1), "the earlier pattern %q matches every path this one does, so it can never match (only its exact text)", s.By.Key)
	}
	return out
}

// routeResource reports whether some rule of t requires a scope of resource
// res other than the admin scope itself.
func routeResource(t *scopes.Table, res string) bool {
	for _, r := range t.Rules() {
		for _, sc := range r.Scopes {
			if sc != t.AdminScope() && strings.HasPrefix(sc, res+":") {
				return true
			}
		}
	}
	return false
}
