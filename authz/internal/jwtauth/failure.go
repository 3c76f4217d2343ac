package jwtauth

import (
	"errors"

	"github.com/lestrrat-go/jwx/v2/jws"
)

// FailureKind is why a token was refused, a closed set. authz maps each
// kind to its decision reason and the docs/CONTRACT.md §5 detail in one
// place (authz/failure.go).
type FailureKind uint8

// The failure kinds.
const (
	// Invalid is an invalid token; Failure.Why says why.
	Invalid FailureKind = iota + 1
	// Expired is a token past its exp (with the leeway), or with exp 0.
	Expired
	// WrongAudience is a token for other audiences (verify_audience).
	WrongAudience
	// ReservedSubject is a user id AgentOS keeps for itself.
	ReservedSubject
	// Canceled is a check whose context ended before the verification.
	Canceled
)

// Cause classifies an Invalid failure for logs and metrics, a closed set
// (authz names it the decision line's token_problem).
type Cause uint8

// The causes of an Invalid failure.
const (
	CauseMalformed   Cause = iota + 1 // not a compact JWS, undecodable, too large, bad header
	CauseClaims                       // a claim of the wrong type or value
	CauseSubject                      // an unusable user or session id
	CauseMissingExp                   // no exp with require_exp
	CauseIssuer                       // iss missing or not the configured one
	CauseAudience                     // aud missing or malformed
	CauseNotYetValid                  // nbf or iat in the future
	CauseSignature                    // no key verified the signature
	CauseNoKey                        // no key for the token's kid or algorithm
	CauseAlgorithm                    // alg not allowed
)

// Failure is why a token was refused.
type Failure struct {
	Kind FailureKind
	// Why is the reason of an Invalid failure, in our words: it never
	// quotes a library error or any part of the token ("signature
	// verification failed"). Empty for the other kinds.
	Why string
	// Cause classifies an Invalid failure (0 for the other kinds).
	Cause Cause
}

func invalid(cause Cause, why string) *Failure {
	return &Failure{Kind: Invalid, Why: why, Cause: cause}
}

var (
	failExpired         = &Failure{Kind: Expired}
	failWrongAudience   = &Failure{Kind: WrongAudience}
	failReservedSubject = &Failure{Kind: ReservedSubject}
	failCanceled        = &Failure{Kind: Canceled}
	// failSignature is the one failure of a signature that no candidate
	// key verifies (VerifySettled tells it from the others by identity).
	failSignature = invalid(CauseSignature, "signature verification failed")
)

// verifyFailure maps a jws.Verify error to the failure, by identity.
func verifyFailure(err error) *Failure {
	switch {
	case errors.Is(err, errAlgNotAllowed):
		return invalid(CauseAlgorithm, "signing algorithm not allowed")
	case errors.Is(err, errNoKey):
		return invalid(CauseNoKey, "no verification key for this token")
	case errors.Is(err, errCritHeader):
		return invalid(CauseMalformed, "unsupported critical header")
	case errors.Is(err, errSignature), jws.IsVerificationError(err):
		return failSignature
	}
	return invalid(CauseMalformed, "malformed token")
}
