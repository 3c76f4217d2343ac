package authz

// What the authz tests that need tokens, keys, a JWKS endpoint, an injected
// clock or an observer add to internal/jwttest (shared with jwtauth's tests).

import (
	"errors"
	"time"

	"github.com/agentos-authz/agentos-authz/authz/internal/jwtauth"
	"github.com/agentos-authz/agentos-authz/internal/jwttest"
)

// jwksRefetchGap is the jwtauth package's least time between two kid-miss
// refetches of a JWKS URL.
const jwksRefetchGap = 10 * time.Second

// faults is the fault of every fetch o saw, in order: "" for a success,
// "untyped" for an error that is not a *jwtauth.FetchError.
func faults(o *jwttest.Observer) []jwtauth.FetchFault {
	var out []jwtauth.FetchFault
	for _, err := range o.Errors() {
		var fe *jwtauth.FetchError
		switch {
		case err == nil:
			out = append(out, "")
		case errors.As(err, &fe):
			out = append(out, fe.Fault)
		default:
			out = append(out, "untyped")
		}
	}
	return out
}
