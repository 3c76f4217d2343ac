package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agentos-authz/agentos-authz/authz"
)

// runToken mints a development token and prints it on stdout, alone on its
// line, so it can be captured with $(...).
func runToken(_ context.Context, args []string, s sys) int {
	fset := newFlagSet("token", "--key FILE [--alg RS256] [--sub U] [--aud OS] [--scopes a,b] [--ttl 1h] [--kid K] [--claim k=v ...]",
		"Mints a signed JWT for development and tests and prints it on stdout.\n"+
			"--key is a PEM private key for RS*, PS*, ES* and EdDSA, or a file holding the\n"+
			"HMAC secret for HS* (surrounding whitespace trimmed).\n"+
			"--claim name=value adds a claim (repeatable): the value is JSON when it parses as\n"+
			"JSON (--claim 'roles=[\"a\",\"b\"]', --claim n=3, --claim admin=true), else the\n"+
			"string as given (--claim email=a@example.com). A --claim is applied last: it\n"+
			"replaces what --sub, --scopes, --ttl and the others set for the same claim.",
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
	claims := claimFlags{}
	fset.Var(claims, "claim", "extra claim `name=value` (repeatable); the value is JSON when valid JSON, else a string")
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
		Claims:    claims,
	})
	if ce := (*claimError)(nil); errors.As(err, &ce) {
		fmt.Fprintf(s.stderr, "agentos-authz token: %v\n", err)
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(s.stderr, "agentos-authz token: %v\n", err)
		return exitFault
	}
	fmt.Fprintln(s.stdout, tok)
	return exitOK
}

// claimFlags collects the repeatable --claim name=value flags.
type claimFlags map[string]any

func (c claimFlags) String() string { return "" }

// Set parses one name=value: the value is JSON when it is valid JSON (numbers kept
// exact), else the string as given. A name given twice is an error.
func (c claimFlags) Set(arg string) error {
	name, raw, ok := strings.Cut(arg, "=")
	name = strings.TrimSpace(name)
	switch {
	case !ok:
		return fmt.Errorf("%q: want name=value", arg)
	case name == "":
		return fmt.Errorf("%q: the claim name is empty", arg)
	}
	if _, dup := c[name]; dup {
		return fmt.Errorf("claim %q given twice", name)
	}
	c[name] = claimValue(raw)
	return nil
}

// claimValue is raw decoded as JSON when it is one valid JSON value, else raw itself.
func claimValue(raw string) any {
	if !json.Valid([]byte(raw)) {
		return raw
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return raw
	}
	return v
}
