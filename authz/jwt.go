package authz

import (
	"fmt"

	"github.com/agentos-authz/agentos-authz/authz/internal/jwtauth"
)

// This file is authz's side of the jwtauth package: a token failure mapped
// to its decision reason and docs/CONTRACT.md §5 detail (the one place), the JWKS
// observer and fetch errors the adapters count, and the signature
// algorithm table the command-line tools sign with.

// failure is why a credential was refused: the decision reason and the
// docs/CONTRACT.md §5 detail. Details are our words; they never quote library
// errors or any part of the token.
type failure struct {
	Reason Reason
	Detail string
	// Problem is the decision line's token_problem ("" when the reason
	// says it all: tokenProblemOf).
	Problem TokenProblem
}

// The docs/CONTRACT.md §5 details of a refused token.
const (
	detailExpired         = "Token has expired"
	detailInvalidAudience = "Invalid token audience - token not valid for this AgentOS instance"
	detailInvalidSubject  = "Invalid token subject"
	detailInvalidPrefix   = "Invalid token: "
)

// tokenFailure maps a jwtauth failure to its reason and detail.
func tokenFailure(f *jwtauth.Failure) *failure {
	switch f.Kind {
	case jwtauth.Expired:
		return &failure{Reason: ReasonTokenExpired, Detail: detailExpired}
	case jwtauth.WrongAudience:
		return &failure{Reason: ReasonInvalidAudience, Detail: detailInvalidAudience}
	case jwtauth.ReservedSubject:
		return &failure{Reason: ReasonInvalidSubject, Detail: detailInvalidSubject}
	case jwtauth.Canceled:
		return &failure{Reason: ReasonCanceled, Detail: detailInvalidPrefix + "the check was cancelled"}
	case jwtauth.Invalid:
		return &failure{Reason: ReasonInvalidToken, Detail: detailInvalidPrefix + f.Why, Problem: causeProblem(f.Cause)}
	}
	// Unreachable (the kinds are closed): fail closed.
	return &failure{Reason: ReasonInvalidToken, Detail: detailInvalidPrefix + "token refused"}
}

// causeProblem names the cause of an invalid token for the decision log
// (TokenProblem's closed set).
func causeProblem(c jwtauth.Cause) TokenProblem {
	switch c {
	case jwtauth.CauseMalformed:
		return TokenMalformed
	case jwtauth.CauseClaims:
		return TokenClaims
	case jwtauth.CauseSubject:
		return TokenSubject
	case jwtauth.CauseMissingExp:
		return TokenMissingExp
	case jwtauth.CauseIssuer:
		return TokenIssuer
	case jwtauth.CauseAudience:
		return TokenAudience
	case jwtauth.CauseNotYetValid:
		return TokenNotYetValid
	case jwtauth.CauseSignature:
		return TokenBadSignature
	case jwtauth.CauseNoKey:
		return TokenUnknownKID
	case jwtauth.CauseAlgorithm:
		return TokenAlgorithm
	}
	return TokenInvalid
}

// JWKSObserver receives what operators count about keys: JWKS fetches and
// verified-token cache lookups. A metrics exporter implements it; the
// default is nopJWKSObserver. Implementations must be safe for concurrent
// use and must not block.
type JWKSObserver interface {
	// Fetch reports one fetch of a JWKS URL or of an OIDC discovery
	// document (first load, background refresh or kid-miss refetch): err
	// is nil and keys the number of usable keys on success (0 for a
	// discovery document), else a *JWKSFetchError whose Fault is a stable
	// label. Called from background goroutines and, for a refetch, from a
	// goroutine a request waits for.
	Fetch(url string, err error, keys int)
	// RefetchLimited reports a kid-miss refetch refused by the rate limit
	// (at most one per 10 s per URL).
	RefetchLimited(url string)
	// CacheHit and CacheMiss report a verified-token cache lookup; they
	// run on the request path and must be as cheap as an atomic add.
	CacheHit()
	CacheMiss()
}

var _ jwtauth.FetchObserver = JWKSObserver(nil)

// nopJWKSObserver counts nothing.
type nopJWKSObserver struct{}

var _ JWKSObserver = nopJWKSObserver{}

func (nopJWKSObserver) Fetch(string, error, int) {}
func (nopJWKSObserver) RefetchLimited(string)    {}
func (nopJWKSObserver) CacheHit()                {}
func (nopJWKSObserver) CacheMiss()               {}

// JWKSFetchError is a failed fetch of a JWKS URL or discovery document:
// URL (without user information), Fault and the underlying Err.
type JWKSFetchError = jwtauth.FetchError

// The fetch faults (JWKSFetchError.Fault): stable labels for logs and
// metrics.
const (
	FaultTimeout   = jwtauth.FaultTimeout   // no complete answer within 5 s
	FaultNetwork   = jwtauth.FaultNetwork   // connection, TLS or HTTP failure
	FaultStatus    = jwtauth.FaultStatus    // an HTTP status other than 200
	FaultTooLarge  = jwtauth.FaultTooLarge  // a body over 1 MiB
	FaultMalformed = jwtauth.FaultMalformed // not a JWK Set with a usable key, or a bad discovery document
	FaultRefused   = jwtauth.FaultRefused   // a redirect or jwks_uri the transport rules forbid
	FaultCanceled  = jwtauth.FaultCanceled  // the source was closed
)

// SigningAlgorithm is a signature algorithm as the token tools use it: its
// JOSE name (Name), key family and, for ECDSA, curve. It is the table the
// verifier accepts (jwt.algorithms).
type SigningAlgorithm = jwtauth.Algorithm

// The key families of a SigningAlgorithm.
const (
	KeyHMAC    = jwtauth.FamilyHMAC
	KeyRSA     = jwtauth.FamilyRSA
	KeyEC      = jwtauth.FamilyEC
	KeyEd25519 = jwtauth.FamilyEd25519
)

// LookupSigningAlgorithm resolves an algorithm name (case-sensitive, as in
// a JOSE header). "none" and unknown names are errors.
func LookupSigningAlgorithm(name string) (SigningAlgorithm, error) {
	a, ok := jwtauth.LookupAlgorithm(name)
	if !ok {
		return SigningAlgorithm{}, fmt.Errorf("unsupported algorithm %q (want HS256/384/512, RS256/384/512, PS256/384/512, ES256/384/512 or EdDSA)", name)
	}
	return a, nil
}
