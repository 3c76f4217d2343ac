// Package authz is the transport-free decision pipeline of agentos-authz:
// it turns one HTTP request (Request: method, raw path, lower-case headers)
// into a Decision (allow, or deny 400/401/403 with the contract's detail,
// the upstream x-agentos-* headers and the headers to remove), exactly as
// CONTRACT §5 orders it:
//
//  1. a request without HTTP attributes → 400 Malformed check request;
//  2. an ambiguous path → 400 Malformed request path (NormalizePath), before
//     any credential is looked at;
//  3. OPTIONS and excluded routes → allowed, x-agentos-auth: none;
//  4. the credential (header, cookie or both; or the deprecated security
//     key) is verified → 401 on failure; an AgentOS service-account token
//     (agno_pat_…) is looked up instead, through the
//     serviceaccount.Authenticator the caller opened (serviceaccounts.go,
//     docs/CONTRACT.md §8) → 401, 429 or 503 on failure;
//  5. with authorization on, and always for a service account, the route's
//     scopes (package scopes) → 403.
//
// It owns the configuration (Config, Load: defaults → YAML → environment →
// flags → Validate), path normalisation, credential extraction, the
// security key, the verified-token cache, and Decide. JWT verification
// and validation are package authz/internal/jwtauth's; authz compiles the
// jwt: section for it and maps its failures to a Reason and detail
// (jwt.go).
//
// It never imports a transport (gRPC, go-control-plane, net/http servers):
// adapters in package envoy build Requests and render Decisions. It never
// reads the environment or files on its own (Load takes its inputs; key and
// JWKS files named by the configuration are the exception, read once by
// New), keeps no package-level mutable state, and logs through the injected
// *zap.Logger only, never a token, a key or a secret.
//
// Decisions are values: Decide has no error result, the zero Decision
// denies, and a cancelled context denies. Errors are configuration faults,
// returned by Load and New, each naming its YAML field.
package authz
