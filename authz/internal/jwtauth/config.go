package jwtauth

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Config is what the verifier reads of the jwt: section (docs/CONTRACT.md
// §4), decoded and defaulted by authz (authz.JWTConfig). A zero string or
// list, or a nil pointer, means the default that the field's comment
// names.
type Config struct {
	// VerificationKeys are PEM public keys or certificates (RS*, PS*, ES*,
	// EdDSA), JWK JSON, or HMAC secrets (HS*).
	VerificationKeys []string
	// VerificationKeyFiles are paths of files holding one key each: a PEM
	// public key or certificate, a JWK, or for HS* a secret used byte for
	// byte (surrounding white space refused).
	VerificationKeyFiles []string
	// AllowShortHMACSecrets accepts HMAC secrets shorter than RFC 7518 §3.2
	// requires (authz warns about it).
	AllowShortHMACSecrets bool
	// JWKSFile is the path of a static JWKS document.
	JWKSFile string
	// JWKSURL is a JWKS document fetched and refreshed in the background.
	JWKSURL string
	// JWKSRefresh is the JWKS URL refresh interval (default 5m, also when
	// 0; at least 1s); a Cache-Control max-age sent by the JWKS server
	// replaces it, kept within [1m, 24h].
	JWKSRefresh time.Duration
	// JWKSCAFile is a PEM file of CA certificates trusted for the JWKS URL
	// (and OIDC discovery) beside the system roots.
	JWKSCAFile string
	// JWKSAllowInsecure allows a plain-HTTP JWKS URL (or issuer) that is
	// not on loopback. Development only.
	JWKSAllowInsecure bool
	// Algorithms are the accepted signature algorithms (default [RS256]).
	Algorithms []string
	// Algorithm is the single-algorithm form, added to Algorithms.
	Algorithm string
	// Issuer, when set, must equal the token's iss. With no other key
	// source (no verification_keys, jwks_file or jwks_url), the JWKS is
	// found by OIDC discovery: jwks_uri of
	// <issuer>/.well-known/openid-configuration.
	Issuer string
	// VerifyAudience checks the audience claim against the expected
	// audiences (Options.Audience).
	VerifyAudience bool
	// Audience are the configured audiences (jwt.audience), checked for
	// empty entries; the expected ones are Options.Audience.
	Audience []string
	// Leeway is the clock skew allowed for exp, nbf and iat (default 10s).
	Leeway time.Duration
	// RequireExp rejects a token without exp (nil: true).
	RequireExp *bool
	// Validate false skips the signature (development only; nil: true).
	Validate *bool
	// Claims names the claims read from the token.
	Claims ClaimNames
	// ForwardClaims are copied to the upstream as x-agentos-claim-<name>;
	// authz checks that each can be part of a header name.
	ForwardClaims []string
}

// ClaimNames are the names of the claims read from a token; "" means the
// default named on each field.
type ClaimNames struct {
	Scopes    string // default "scopes"
	UserID    string // default "sub"
	SessionID string // default "session_id"
	Audience  string // default "aud"
}

// Defaults of the jwt: section (docs/CONTRACT.md §4) that the verifier
// applies.
const (
	defaultAlgorithm   = "RS256"
	DefaultLeeway      = 10 * time.Second
	DefaultJWKSRefresh = 5 * time.Minute
	// minJWKSRefresh is the shortest jwt.jwks_refresh accepted.
	minJWKSRefresh = time.Second
	// MaxTokenBytes is the largest token Verify parses (docs/CONTRACT.md
	// §5: over 8 KiB is an invalid token).
	MaxTokenBytes = 8 << 10
)

// withDefaults fills the empty names with the defaults.
func (n ClaimNames) withDefaults() ClaimNames {
	if n.Scopes == "" {
		n.Scopes = "scopes"
	}
	if n.UserID == "" {
		n.UserID = "sub"
	}
	if n.SessionID == "" {
		n.SessionID = "session_id"
	}
	if n.Audience == "" {
		n.Audience = "aud"
	}
	return n
}

// validatesSignature reports whether signatures are verified (validate,
// default true).
func (c *Config) validatesSignature() bool { return c.Validate == nil || *c.Validate }

// requiresExp reports whether a token without exp is refused (require_exp,
// default true).
func (c *Config) requiresExp() bool { return c.RequireExp == nil || *c.RequireExp }

// HasSource reports whether a JWT source is configured: a key, a JWKS file
// or URL, an issuer to discover the JWKS from, or validate: false
// (docs/CONTRACT.md §4).
func (c *Config) HasSource() bool {
	return len(c.VerificationKeys) > 0 || len(c.VerificationKeyFiles) > 0 || c.JWKSFile != "" || c.JWKSURL != "" || !c.validatesSignature() || c.discoversJWKS()
}

// discoversJWKS reports whether the JWKS URL comes from OIDC discovery:
// an issuer is set and no other key source is (a verification key, a JWKS
// file or URL), and signatures are verified. An issuer beside configured
// keys only checks iss: it never makes the service fetch anything.
func (c *Config) discoversJWKS() bool {
	return c.Issuer != "" && c.JWKSURL == "" && c.JWKSFile == "" && len(c.VerificationKeys) == 0 && c.validatesSignature()
}

// RemoteJWKS reports whether keys are fetched over HTTP: jwks_url, or
// discovery.
func (c *Config) RemoteJWKS() bool { return c.JWKSURL != "" || c.discoversJWKS() }

// Problem is one problem of the jwt: section. Field is the path inside
// the section ("algorithms[1]"); Error prefixes it with "jwt.". authz turns
// it into its *FieldError, the one error type of a configuration problem.
type Problem struct {
	Field string
	Err   error
}

func (p *Problem) Error() string { return "jwt." + p.Field + ": " + p.Err.Error() }

func (p *Problem) Unwrap() error { return p.Err }

// Compiled is a Config compiled once: every field checked, the keys
// parsed, the key, JWKS and CA files read. NewCompiled builds verifiers
// from it without reading any file again, so what was checked is what
// verifies. Immutable.
type Compiled struct {
	cfg  Config
	keys compiledKeys
}

// Compile checks every field of c and reads its files, once. The problems
// are *Problem values naming their field (except what needs os_id, which
// Compile does not know: NewCompiled's Options.Audience). Messages never
// quote key material. Without a fetched JWKS, each accepted algorithm must
// have a key of its type.
func Compile(c *Config) (*Compiled, []error) {
	keys, errs := c.compile(!c.RemoteJWKS(), nil)
	if len(errs) > 0 {
		return nil, errs
	}
	return &Compiled{cfg: *c, keys: keys}, nil
}

// Digest is a SHA-256 of the bytes of every file Compile read (key files,
// JWKS file, CA file), for a caller that tells key inputs apart (authz's
// Reload keeps a verifier whose inputs did not change).
func (c *Compiled) Digest() [32]byte { return c.keys.digest }

// compiledKeys is the compiled key material of a Config.
type compiledKeys struct {
	allowed algSet
	static  []verifyKey
	jwks    *keySet // from jwks_file; nil without one
	// rootCAs are the system roots plus jwt.jwks_ca_file's certificates;
	// nil without one.
	rootCAs *x509.CertPool
	// digest is a SHA-256 of the bytes of every file read.
	digest [32]byte
}

// compile checks every field and parses the keys. coverage asks for the
// check that each algorithm has a key of its type (skipped with
// validate: false); jwks, when non-nil, replaces jwks_file as the JWKS
// and is not checked for coverage (its keys may arrive later).
func (c *Config) compile(coverage bool, jwks jwksSource) (compiledKeys, []error) {
	var errs []error
	fail := func(path, format string, args ...any) {
		errs = append(errs, &Problem{Field: path, Err: fmt.Errorf(format, args...)})
	}
	var out compiledKeys
	files := sha256.New() // the bytes of every file read, for out.digest

	// Algorithms; origin remembers where each came from, for messages.
	origin := make(map[sigAlg]string)
	checkAlg := func(path, name string) {
		a, ok := parseAlg(name)
		switch {
		case ok:
			out.allowed.add(a)
			if _, seen := origin[a]; !seen {
				origin[a] = path
			}
		case strings.EqualFold(name, "none"):
			fail(path, "%q is not allowed: unsigned tokens are never accepted", name)
		default:
			hint := ""
			for b := range algCount {
				if strings.EqualFold(name, b.String()) {
					hint = fmt.Sprintf(" (did you mean %s?)", b)
				}
			}
			fail(path, "%s is not a signature algorithm%s; use one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA",
				strconv.Quote(name), hint)
		}
	}
	for i, name := range c.Algorithms {
		checkAlg("algorithms["+strconv.Itoa(i)+"]", name)
	}
	if c.Algorithm != "" {
		checkAlg("algorithm", c.Algorithm)
	}
	if len(c.Algorithms) == 0 && c.Algorithm == "" {
		out.allowed.add(algRS256)
		origin[algRS256] = "algorithms"
	}

	hmacMin := out.allowed.hmacMinSecret()
	for i, s := range c.VerificationKeys {
		keys, err := parseVerificationKey(s)
		if err == nil && isSecret(keys) {
			err = checkSecret([]byte(s), hmacMin, c.AllowShortHMACSecrets, false)
		}
		if err != nil {
			fail("verification_keys["+strconv.Itoa(i)+"]", "%v", err)
			continue
		}
		out.static = append(out.static, keys...)
	}
	for i, path := range c.VerificationKeyFiles {
		keys, err := readKeyFile(path, hmacMin, c.AllowShortHMACSecrets, files)
		if err != nil {
			fail("verification_key_files["+strconv.Itoa(i)+"]", "%v", err)
			continue
		}
		out.static = append(out.static, keys...)
	}
	if c.JWKSFile != "" && jwks == nil {
		ks, err := loadJWKSFile(c.JWKSFile, files)
		if err != nil {
			fail("jwks_file", "%v", err)
		} else {
			out.jwks = ks
		}
	}

	if c.Leeway < 0 {
		fail("leeway", "must not be negative")
	}
	if c.JWKSRefresh < 0 {
		fail("jwks_refresh", "must not be negative")
	} else if c.JWKSRefresh > 0 && c.JWKSRefresh < minJWKSRefresh {
		fail("jwks_refresh", "%s is too short: the JWKS is refreshed at most every %s", c.JWKSRefresh, minJWKSRefresh)
	}
	var remoteErrs []error
	out.rootCAs, remoteErrs = c.checkRemote(files)
	errs = append(errs, remoteErrs...)
	for i, a := range c.Audience {
		if a == "" {
			fail("audience["+strconv.Itoa(i)+"]", "is empty")
		}
	}

	// Every accepted algorithm needs a key of its type (docs/CONTRACT.md
	// §4), unless no signature is checked or no JWT source is configured
	// at all (security key only: nothing to cover).
	if coverage && c.validatesSignature() && jwks == nil && c.HasSource() {
		for _, a := range out.allowed.algs() {
			fits := out.jwks != nil && out.jwks.fits(a)
			for _, k := range out.static {
				fits = fits || k.algs.has(a)
			}
			if fits {
				continue
			}
			path, def := origin[a], ""
			if len(c.Algorithms) == 0 && c.Algorithm == "" {
				def = " (the default; set jwt.algorithms to the algorithms your tokens use)"
			}
			fail(path, "%s%s has no key of its type: it needs %s in verification_keys, verification_key_files or jwks_file", a, def, a.keyKind())
		}
	}
	copy(out.digest[:], files.Sum(nil))
	return out, errs
}
