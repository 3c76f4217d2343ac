// Package idtoken signs the identity tokens this service hands to the
// upstream AgentOS (docs/CONTRACT.md §9, upstream.identity_token): after a
// caller's JWT is verified and the request allowed, the upstream receives
// instead a JWT signed here, which AgentOS verifies with one public key
// whatever issuer, algorithm or JWKS URL the caller's token came from.
//
// It owns:
//   - the signing key: a PEM private key file (PKCS#8, PKCS#1 RSA or SEC1
//     EC) read by ParseKey / LoadKey: RSA of 2048 bits or more signs RS256
//     (AgentOS's default algorithm, the recommended key type), P-256 signs
//     ES256, Ed25519 signs EdDSA; anything else is refused with an error
//     that says what the file holds and what to write instead;
//   - the key id: the RFC 7638 JWK thumbprint (SHA-256, base64url);
//   - the token: Signer.Sign writes exactly the claims of §9 (iss, aud,
//     sub, session_id, scopes, iat, exp, jti) under a constant protected
//     header (alg, kid, typ), as a compact JWS built with the standard
//     crypto packages: the same signature as jwx's generic jwt.Sign
//     without its ~120 allocations and 6 KB per token (BenchmarkSign,
//     BenchmarkSignJWX); the tests verify every output with jwx;
//   - the public JWK Set served at /.well-known/jwks.json and written by
//     "agentos-authz keygen --jwks": the signing key and, after a key
//     rotation, the previous one (Signer.JWKS, Signer.Next, PublicJWKS);
//   - Token, the value a verified-token cache keeps beside the principal,
//     with Token.Fresh saying when it must be signed again.
//
// It must never log, print or put in an error a private key, a token or
// any part of either: errors about a key file name what kind of content
// the file holds, never its bytes. It reads no file but the one LoadKey is
// given, keeps no package-level mutable state, and every exported value is
// immutable once built, so a Signer is safe for concurrent use.
package idtoken
