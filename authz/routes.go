package authz

import (
	"strings"
	"sync"

	"github.com/agentos-authz/agentos-authz/scopes"
)

// Routes is the effective route table of the running snapshot, for the
// policy API (ListRoutes) and the routes command.
type Routes struct {
	// Table is the compiled table: defaults, interface routes and
	// scope_mappings in match order (docs/CONTRACT.md §5).
	Table *scopes.Table
	// Excluded are the excluded_routes globs with the interfaces' own
	// excluded routes, in the order they are tried.
	Excluded []string
	// Authorization reports whether scopes are enforced at all.
	Authorization bool
}

// Routes returns the running snapshot's route table; ok is false for an
// Authorizer not built by New.
func (a *Authorizer) Routes() (Routes, bool) {
	s := a.snap.Load()
	if s == nil {
		return Routes{}, false
	}
	ex := make([]string, len(s.excluded.globs))
	for i := range s.excluded.globs {
		ex[i] = s.excluded.globs[i].glob.String()
	}
	return Routes{Table: s.table, Excluded: ex, Authorization: s.authorize}, true
}

// CredentialHeaders adds tok to h where this configuration looks for a
// credential (docs/CONTRACT.md §5 step 4): as "Bearer <tok>" in the
// jwt.header and as the jwt.cookie cookie, so that token_source header,
// cookie or both all find it. h must not be nil.
func (c *Config) CredentialHeaders(h map[string]string, tok string) {
	header := strings.ToLower(c.JWT.Header)
	if header == "" {
		header = "authorization"
	}
	h[header] = "Bearer " + tok
	cookie := c.JWT.Cookie
	if cookie == "" {
		cookie = "access_token"
	}
	if prev := h["cookie"]; prev != "" {
		h["cookie"] = prev + "; " + cookie + "=" + tok
	} else {
		h["cookie"] = cookie + "=" + tok
	}
}

// Step is the step of docs/CONTRACT.md §5 that produced a decision with
// reason r: 1 malformed check request, 2 ambiguous path, 3 preflight or
// excluded route, 4 authentication, 5 authorization (or the allow of an
// authenticated caller); 0 when no step decided (cancelled, unconfigured).
func (r Reason) Step() int {
	switch r {
	case ReasonMalformedRequest:
		return 1
	case ReasonMalformedPath:
		return 2
	case ReasonAllowedPreflight, ReasonAllowedExcluded:
		return 3
	case ReasonMissingCredential, ReasonTokenExpired, ReasonInvalidAudience,
		ReasonInvalidToken, ReasonInvalidSubject, ReasonInvalidSecurityKey,
		ReasonKeysUnavailable, ReasonServiceAccountInvalid, ReasonServiceAccountsDisabled,
		ReasonServiceAccountThrottled, ReasonServiceAccountUnavailable:
		return 4
	case ReasonAllowed, ReasonAllowedListing, ReasonAllowedUnmapped,
		ReasonInsufficientScopes, ReasonNoRule:
		return 5
	}
	return 0
}

// defaultKeys are the keys of the embedded route table.
var defaultKeys = sync.OnceValue(func() map[string]bool {
	keys := make(map[string]bool)
	for _, m := range scopes.Defaults() {
		keys[m.Key] = true
	}
	return keys
})

// RouteOrigin describes where a rule of the table comes from: "default",
// "interface" or "custom", and whether a custom rule replaced a default or
// interface route in place (overrides).
func RouteOrigin(r *scopes.Rule) (origin string, overrides bool) {
	switch {
	case r.Custom:
		return "custom", r.Interface != "" || defaultKeys()[r.Key]
	case r.Interface != "":
		return "interface", false
	}
	return "default", false
}
