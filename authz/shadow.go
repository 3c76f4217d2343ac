package authz

import "strconv"

// Shadow mode (mode: shadow, docs/CONTRACT.md §4): every authentication and
// authorization decision is made, logged and counted as in enforce mode,
// then let through, with the decision enforce mode would answer sent
// upstream in x-agentos-shadow-decision. It is for rolling RBAC out in
// front of an AgentOS that used the security key: the operator watches the
// would-be denials before enforcing them.
//
// What is never shadowed, and why:
//   - 400 (malformed check request, ambiguous path): not an auth decision;
//     the refusal protects the upstream from a path it may read differently
//     (docs/CONTRACT.md §5 step 2), and no RBAC rollout needs it relaxed;
//   - a cancelled check: the caller is gone;
//   - the zero Decision (an Authorizer not built by New): fail closed.
//
// A shadowed denial reaches the upstream without identity headers (no
// credential was accepted, or it lacked scopes): only
// x-agentos-shadow-decision, and every inbound x-agentos-* header removed
// as always, so a client can never inject an identity.

// HeaderShadowDecision carries "<status> <reason>" of the decision enforce
// mode would answer ("403 insufficient_scopes", "200 allowed").
const HeaderShadowDecision = "x-agentos-shadow-decision"

// shadowable reports whether shadow mode lets d through.
func shadowable(d *Decision) bool {
	if d.Allowed() {
		return true
	}
	switch d.Status {
	case 401, 403, 429, 503:
		return d.Reason != ReasonCanceled && d.Reason != ReasonUnknown
	}
	return false
}

// shadowed turns d into its shadow-mode form (unchanged when it is not
// shadowable): Shadow set, the would-be decision in
// x-agentos-shadow-decision, inbound x-agentos-* headers removed.
func shadowed(r *Request, d Decision) Decision {
	if !shadowable(&d) {
		return d
	}
	h := Header{Name: HeaderShadowDecision, Value: strconv.Itoa(d.Status) + " " + d.Reason.String()}
	if d.Allowed() {
		d.Upstream = append(d.Upstream, h)
	} else {
		d.Upstream = []Header{h}
		d.Response = nil // the CORS headers of an error response
	}
	var in map[string]string
	if r != nil {
		in = r.Headers
	}
	d.Remove = removals(in, d.Upstream)
	d.Shadow = true
	return d
}
