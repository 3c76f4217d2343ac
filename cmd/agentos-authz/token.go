package main

import (
	"context"
	"fmt"
	"time"

	"github.com/agentos-authz/agentos-authz/authz"
)

// runToken mints a development token and prints it on stdout, alone on its
// line, so it can be captured with $(...).
func runToken(_ context.Context, args []string, s sys) int {
	fset := newFlagSet("token", "--key FILE [--alg RS256] [--sub U] [--aud OS] [--scopes a,b] [--ttl 1h]",
		"Mints a signed JWT for development and tests and prints it on stdout.\n"+
			"--key is a PEM private key for RS*, PS*, ES* and EdDSA, or a file holding the\n"+
			"HMAC secret for HS* (surrounding whitespace trimmed).",
		s.stderr)
	keyFile := fset.String("key", "", "private key PEM file, or secret file for HS* (required)")
	alg := fset.String("alg", "RS256", "signature algorithm: HS*, RS*, PS*, ES256/384/512 or EdDSA")
	sub := fset.String("sub", "", "subject (the user id claim)")
	aud := fset.String("aud", "", "audience, comma-separated (the AgentOS id)")
	scopes := fset.String("scopes", "", "scopes, comma-separated, as the list claim \"scopes\"")
	iss := fset.String("iss", "", "issuer")
	session := fset.String("session-id", "", "session_id claim")
	kid := fset.String("kid", "", "key id for the JOSE header")
	ttl := fset.Duration("ttl", time.Hour, "lifetime: exp = now + ttl; 0 omits exp, a negative ttl mints an expired token")
	if code, ok := parseFlags(fset, args); !ok {
		return code
	}
	if *keyFile == "" {
		return usageError(fset, "--key is required")
	}
	spec, err := authz.LookupSigningAlgorithm(*alg)
	if err != nil {
		return usageError(fset, "--alg: %v", err)
	}
	key, err := signingKey(spec, *keyFile)
	if err != nil {
		fmt.Fprintf(s.stderr, "agentos-authz token: --key: %v\n", err)
		return exitUsage
	}
	tok, err := mintToken(spec, key, tokenSpec{
		Subject:   *sub,
		Audience:  splitList(*aud),
		Scopes:    splitList(*scopes),
		Issuer:    *iss,
		SessionID: *session,
		KeyID:     *kid,
		TTL:       *ttl,
		Now:       s.now(),
	})
	if err != nil {
		fmt.Fprintf(s.stderr, "agentos-authz token: %v\n", err)
		return exitFault
	}
	fmt.Fprintln(s.stdout, tok)
	return exitOK
}
