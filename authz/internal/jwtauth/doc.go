// Package jwtauth verifies and validates the JWTs of the jwt: section
// (docs/CONTRACT.md §4, §5): the accepted signature algorithms and the
// verification keys (PEM, JWK, HMAC secrets, a JWKS file or URL, OIDC
// discovery), key selection, signature verification with its compact
// fast path, and the claim checks that turn a token into an Identity or a
// Failure.
//
// It is not named jwt because the files here import jwx's jwt package.
// Its API is what authz uses: Compile checks a Config and reads its files
// once, NewCompiled builds a Verifier from the result (New does both);
// Verify returns the identity or a Failure, whose closed FailureKind authz
// maps to its decision reason and detail; Start, Ready and Close run a
// JWKS URL; Generation identifies the key set for the token cache; a
// FetchObserver counts the JWKS fetches.
package jwtauth
