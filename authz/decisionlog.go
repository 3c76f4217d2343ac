package authz

// Decision-log vocabulary shared with the service's wiring (cmd), which
// rate-limits denial lines by their message (docs/CONTRACT.md §4 log).

// MsgDenied is the message of every denial's log line.
const MsgDenied = msgDenied

// Transports, the value of Request.Transport and of the decision line's
// transport field.
const (
	TransportGRPC = "grpc"
	TransportHTTP = "http"
)

// TokenProblem says why a token was refused (the decision line's
// token_problem field), from a closed set: a label for logs, never the
// token or a claim value. The zero value means none (not a token denial).
type TokenProblem string

// The closed set of TokenProblem values.
const (
	TokenExpired      TokenProblem = "expired"       // exp in the past
	TokenNotYetValid  TokenProblem = "not_yet_valid" // nbf or iat in the future
	TokenBadSignature TokenProblem = "bad_signature" // no key verified the signature
	TokenUnknownKID   TokenProblem = "unknown_kid"   // no key has the token's kid (or fits its algorithm)
	TokenAlgorithm    TokenProblem = "algorithm"     // alg not allowed
	TokenIssuer       TokenProblem = "issuer"        // iss missing or not the configured one
	TokenAudience     TokenProblem = "audience"      // aud missing or not accepted
	TokenMissingExp   TokenProblem = "missing_exp"   // no exp with require_exp
	TokenMalformed    TokenProblem = "malformed"     // not a compact JWS, undecodable, too large
	TokenClaims       TokenProblem = "claims"        // a claim of the wrong type or value
	TokenSubject      TokenProblem = "subject"       // reserved or unusable user id
	TokenInvalid      TokenProblem = "invalid"       // refused, the verifier gave no finer cause
)

// TokenProblems lists the closed set, for documentation and tests.
func TokenProblems() []TokenProblem {
	return []TokenProblem{TokenExpired, TokenNotYetValid, TokenBadSignature, TokenUnknownKID, TokenAlgorithm,
		TokenIssuer, TokenAudience, TokenMissingExp, TokenMalformed, TokenClaims, TokenSubject, TokenInvalid}
}

// tokenProblemOf is the problem a token-denial reason implies, "" for a
// reason that is not about a token. ReasonInvalidToken covers many causes:
// TokenInvalid until the verifier reports which (Decision.TokenProblem set
// before logging wins).
func tokenProblemOf(r Reason) TokenProblem {
	switch r {
	case ReasonTokenExpired:
		return TokenExpired
	case ReasonInvalidAudience:
		return TokenAudience
	case ReasonInvalidSubject:
		return TokenSubject
	case ReasonInvalidToken:
		return TokenInvalid
	}
	return ""
}
