package authz

import "strconv"

// Request is one HTTP request to authorize, as any transport sees it.
// Adapters (envoy/) build it; Decide never mutates it.
type Request struct {
	// Method is the HTTP method as sent ("GET", "HEAD", "OPTIONS", ...).
	Method string
	// Path is the raw request target as the proxy sent it: path plus query,
	// not decoded (Envoy's :path). Decide normalises it (docs/CONTRACT.md §5).
	Path string
	// Headers holds the request headers with lower-case keys; repeated
	// headers are already joined with "," as Envoy does. The "cookie"
	// header carries the cookies.
	Headers map[string]string
	// ClientAddr is the address of the client the proxy reports (Envoy's
	// attributes.source.address; in HTTP mode the last X-Forwarded-For
	// entry, else the connection's peer): the key of the failed
	// service-account lookups (docs/CONTRACT.md §8). "" when unknown.
	ClientAddr string
	// Malformed is set by an adapter whose transport request lacks the HTTP
	// attributes (docs/CONTRACT.md §5 step 1): Decide answers 400 Malformed check request.
	Malformed bool
	// Transport is TransportGRPC or TransportHTTP, set by the adapter, for
	// the decision log line; "" when unknown (the check command).
	Transport string
}

// Header is one header name/value pair (name lower-case).
type Header struct {
	Name  string
	Value string
}

// MatchedScope is one satisfied required scope of the matched rule and the
// caller scope that met it (for a filtered listing, the caller's
// per-resource scopes, space-separated).
type MatchedScope struct {
	Required string
	By       string
}

// Reason is the closed set of decision causes; its String() is a stable
// snake_case code used in logs and metric labels.
type Reason uint8

// The reasons, each with the status it carries (Status) and, in comments,
// the docs/CONTRACT.md §5 row it stands for.
const (
	// ReasonUnknown is the zero value: a zero Decision denies.
	ReasonUnknown Reason = iota
	ReasonAllowed
	ReasonAllowedExcluded   // excluded route, no credential looked at
	ReasonAllowedPreflight  // OPTIONS
	ReasonAllowedListing    // filtered listing with accessible ids
	ReasonAllowedUnmapped   // no rule, unmapped_routes: allow
	ReasonMalformedRequest  // 400 Malformed check request
	ReasonMalformedPath     // 400 Malformed request path
	ReasonMissingCredential // 401 no credential
	ReasonTokenExpired      // 401 Token has expired
	ReasonInvalidAudience   // 401 audience
	ReasonInvalidToken      // 401 Invalid token: ...
	ReasonInvalidSubject    // 401 reserved subject
	ReasonInvalidSecurityKey
	ReasonInsufficientScopes // 403
	ReasonNoRule             // 403 unmapped_routes: deny
	ReasonCanceled           // context cancelled: fail closed
	ReasonKeysUnavailable    // 503 keys not loaded yet (a JWKS URL before its first fetch)
	// The service-account reasons (docs/CONTRACT.md §8, serviceaccounts.go).
	ReasonServiceAccountInvalid     // 401 unknown, revoked or expired agno_pat_ token
	ReasonServiceAccountsDisabled   // 401 an agno_pat_ token without service_accounts.db_url
	ReasonServiceAccountThrottled   // 429 too many failed lookups from the client
	ReasonServiceAccountUnavailable // 503 the database could not answer
	ReasonIdentityTokenFailed       // 503 allowed, but the identity token could not be signed (docs/CONTRACT.md §9): fail closed
	reasonCount
)

var reasonNames = [...]string{
	ReasonUnknown:            "unknown",
	ReasonAllowed:            "allowed",
	ReasonAllowedExcluded:    "allowed_excluded",
	ReasonAllowedPreflight:   "allowed_preflight",
	ReasonAllowedListing:     "allowed_listing",
	ReasonAllowedUnmapped:    "allowed_unmapped",
	ReasonMalformedRequest:   "malformed_request",
	ReasonMalformedPath:      "malformed_path",
	ReasonMissingCredential:  "missing_credential",
	ReasonTokenExpired:       "token_expired",
	ReasonInvalidAudience:    "invalid_audience",
	ReasonInvalidToken:       "invalid_token",
	ReasonInvalidSubject:     "invalid_subject",
	ReasonInvalidSecurityKey: "invalid_security_key",
	ReasonInsufficientScopes: "insufficient_scopes",
	ReasonNoRule:             "no_rule",
	ReasonCanceled:           "canceled",
	ReasonKeysUnavailable:    "keys_unavailable",

	ReasonServiceAccountInvalid:     "service_account_invalid",
	ReasonServiceAccountsDisabled:   "service_accounts_disabled",
	ReasonServiceAccountThrottled:   "service_account_throttled",
	ReasonServiceAccountUnavailable: "service_account_unavailable",
	ReasonIdentityTokenFailed:       "identity_token_failed",
}

// String returns the stable snake_case code of r.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "reason_" + strconv.Itoa(int(r))
}

// Status is the HTTP status a decision with reason r carries (docs/CONTRACT.md
// §5): 200 for the allowed reasons, 400 for a malformed request or path,
// 401 for a missing or refused credential, 503 for an identity token that
// could not be signed (docs/CONTRACT.md §9), 403 otherwise (insufficient
// scopes, no rule, a cancelled check, and the zero Reason, so that a zero
// Decision denies).
func (r Reason) Status() int {
	switch r {
	case ReasonAllowed, ReasonAllowedExcluded, ReasonAllowedPreflight, ReasonAllowedListing, ReasonAllowedUnmapped:
		return 200
	case ReasonMalformedRequest, ReasonMalformedPath:
		return 400
	case ReasonMissingCredential, ReasonTokenExpired, ReasonInvalidAudience,
		ReasonInvalidToken, ReasonInvalidSubject, ReasonInvalidSecurityKey,
		ReasonServiceAccountInvalid, ReasonServiceAccountsDisabled:
		return 401
	case ReasonServiceAccountThrottled: // docs/CONTRACT.md §5 table
		return 429
	case ReasonKeysUnavailable, ReasonServiceAccountUnavailable, ReasonIdentityTokenFailed:
		// Faults of ours or of a dependency, not of the caller; an
		// identity token not signed too (docs/CONTRACT.md §9).
		return 503
	}
	return 403
}

// Reasons lists every Reason, for pre-registering metric label values.
func Reasons() []Reason {
	rs := make([]Reason, 0, reasonCount)
	for r := ReasonUnknown; r < reasonCount; r++ {
		rs = append(rs, r)
	}
	return rs
}

// Decision is the outcome of Decide. It is a value: every client-caused
// outcome (allow, 400, 401, 403) is a Decision, never an error.
// The zero Decision denies (Status 0 is not 200).
type Decision struct {
	// Status is the HTTP status: 200 allow, 400, 401 or 403; 429 for a
	// throttled service-account token, 503 when the keys or the
	// service-account database cannot answer or an identity token could
	// not be signed (docs/CONTRACT.md §5 table, §9).
	Status int
	// Reason is the machine code for logs and metrics.
	Reason Reason
	// Detail is the contract's message for the JSON body {"detail": ...}
	// of a denial (docs/CONTRACT.md §5 table); empty on allow.
	Detail string

	// Upstream are the headers set (overwriting) on the request forwarded
	// upstream on allow, in a stable order (docs/CONTRACT.md §5 table).
	Upstream []Header
	// Remove lists inbound x-agentos-* header names that are not in
	// Upstream and must be removed from the forwarded request.
	Remove []string
	// Response are headers for the denied response beyond content-type
	// and www-authenticate (the CORS headers).
	Response []Header

	// Explanation, for logs and the check command.
	Rule     string         // the matched route-table key, "" when none
	Required []string       // the rule's required scopes
	Matched  []MatchedScope // for each satisfied required scope, the caller scope that met it
	Missing  []string       // required scopes the caller lacks
	UserID   string         // the user id claim, "" when none
	Auth     string         // "jwt", "security-key", "service-account", "none" or "" (denied before authentication)
	// TokenProblem is why a token was refused (401 token denials), from a
	// closed set; "" otherwise.
	TokenProblem TokenProblem
	// Shadow is set in shadow mode (mode: shadow, docs/CONTRACT.md §4) on a
	// decision that is reported but not enforced: Status, Reason and Detail
	// are what enforce mode answers, yet the request passes (Passes), with
	// Upstream and Remove. Malformed requests (400) are never shadowed.
	Shadow bool
}

// Allowed reports whether d is an allow (Status 200).
func (d *Decision) Allowed() bool { return d.Status == 200 }

// Passes reports whether the adapters let the request through: an allow,
// or a shadowed decision (shadow mode reports a denial, it does not enforce
// it). The zero Decision does not pass.
func (d *Decision) Passes() bool { return d.Status == 200 || d.Shadow }
