package jwtauth

import "strconv"

// The verifier tests state what they expect as the service answers it: the
// decision reason and the docs/CONTRACT.md §5 detail. Reason and Detail
// restate authz's mapping of a Failure (authz/jwt.go, tokenFailure) as the
// tests' oracle; authz's TestConformanceJWT holds the real one to the
// conformance vectors.

// Reason is the decision reason of a refused token.
type Reason uint8

// The reasons a token failure can have.
const (
	ReasonUnknown Reason = iota
	ReasonTokenExpired
	ReasonInvalidAudience
	ReasonInvalidToken
	ReasonInvalidSubject
	ReasonCanceled
)

func (r Reason) String() string {
	switch r {
	case ReasonTokenExpired:
		return "token_expired"
	case ReasonInvalidAudience:
		return "invalid_audience"
	case ReasonInvalidToken:
		return "invalid_token"
	case ReasonInvalidSubject:
		return "invalid_subject"
	case ReasonCanceled:
		return "canceled"
	}
	return "reason_" + strconv.Itoa(int(r))
}

// The docs/CONTRACT.md §5 details.
const (
	detailExpired         = "Token has expired"
	detailInvalidAudience = "Invalid token audience - token not valid for this AgentOS instance"
	detailInvalidSubject  = "Invalid token subject"
	detailInvalidPrefix   = "Invalid token: "
)

// Reason is the decision reason of f.
func (f *Failure) Reason() Reason {
	switch f.Kind {
	case Expired:
		return ReasonTokenExpired
	case WrongAudience:
		return ReasonInvalidAudience
	case ReservedSubject:
		return ReasonInvalidSubject
	case Canceled:
		return ReasonCanceled
	case Invalid:
		return ReasonInvalidToken
	}
	return ReasonUnknown
}

// Detail is the detail of f.
func (f *Failure) Detail() string {
	switch f.Kind {
	case Expired:
		return detailExpired
	case WrongAudience:
		return detailInvalidAudience
	case ReservedSubject:
		return detailInvalidSubject
	case Canceled:
		return detailInvalidPrefix + "the check was cancelled"
	}
	return detailInvalidPrefix + f.Why
}
