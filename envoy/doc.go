// Package envoy adapts Envoy's external-authorization protocol to the
// transport-free decision pipeline in package authz.
//
// It owns the translation table in both directions and nothing more:
// a CheckRequest becomes an authz.Request (FromCheckRequest), an
// authz.Decision becomes a CheckResponse (ToCheckResponse), and Server
// serves envoy.service.auth.v3.Authorization/Check by chaining the two
// around a Decider. The HTTP ext_authz mode (docs/CONTRACT.md §6) does the same
// for an http.Request (FromHTTPRequest, WriteDecision, NewHTTPHandler):
// Envoy's HTTP service mode, nginx auth_request and Traefik ForwardAuth.
// NewCheckRequest is the one builder of the CheckRequest Envoy would send,
// for every caller without an Envoy in front of it (the check command, the
// policy API's Explain, authz-bench), so that each of them reaches the
// decision through the same FromCheckRequest as a served request.
// Metrics wraps a Decider to count every decision of both transports in
// one place, and counts JWKS fetches and token-cache lookups, on a
// Prometheus registry it is given.
//
// It never decides: no path rules, credentials or scopes live here, and
// every client-caused outcome (allow, 400, 401, 403) is rendered as a
// CheckResponse, never as a gRPC error (docs/CONTRACT.md §5, ENVOY-NOTES §3: a
// failed RPC is an error to Envoy, not a denial). It holds no global
// state and does not log tokens or header values.
package envoy
