package authz

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// JWTConfig is the jwt: section of the configuration file (CONTRACT §4).
// A zero string, list or nil pointer means the default that the field's
// comment names; start from DefaultJWTConfig, which also sets the two
// durations, so that an explicit "leeway: 0s" stays zero.
type JWTConfig struct {
	// VerificationKeys are PEM public keys or certificates (RS*, PS*, ES*,
	// EdDSA), JWK JSON, or HMAC secrets (HS*); JWT_VERIFICATION_KEY is
	// appended by the loader.
	VerificationKeys []string `yaml:"verification_keys"`
	// JWKSFile is the path of a static JWKS document (JWT_JWKS_FILE).
	JWKSFile string `yaml:"jwks_file"`
	// JWKSURL is a JWKS document fetched and refreshed in the background
	// (JWT_JWKS_URL); served by a JWKSource given to NewVerifier.
	JWKSURL string `yaml:"jwks_url"`
	// JWKSRefresh is the JWKS URL refresh interval (default 5m, also when
	// 0; at least 1s); a
	// Cache-Control max-age sent by the JWKS server replaces it, kept
	// within [1m, 24h].
	JWKSRefresh Duration `yaml:"jwks_refresh"`
	// JWKSCAFile is a PEM file of CA certificates trusted for the JWKS URL
	// (and OIDC discovery) beside the system roots.
	JWKSCAFile string `yaml:"jwks_ca_file"`
	// JWKSAllowInsecure allows a plain-HTTP JWKS URL (or issuer) that is
	// not on loopback. Development only.
	JWKSAllowInsecure bool `yaml:"jwks_allow_insecure"`
	// CacheTTL bounds how long a verified token is remembered (default
	// 5m; never past the token's exp). 0 disables the cache.
	CacheTTL Duration `yaml:"cache_ttl"`
	// CacheSize bounds the verified-token cache in entries (nil: 100000).
	// 0 disables the cache.
	CacheSize *int `yaml:"cache_size"`
	// Algorithms are the accepted signature algorithms (default [RS256]).
	Algorithms []string `yaml:"algorithms"`
	// Algorithm is the single-algorithm form, added to Algorithms.
	Algorithm string `yaml:"algorithm"`
	// Issuer, when set, must equal the token's iss. With no other key
	// source (no verification_keys, jwks_file or jwks_url), the JWKS is
	// found by OIDC discovery: jwks_uri of
	// <issuer>/.well-known/openid-configuration.
	Issuer string `yaml:"issuer"`
	// VerifyAudience checks the audience claim against the expected
	// audiences (Audience, by default [os_id]).
	VerifyAudience bool `yaml:"verify_audience"`
	// Audience are the accepted audiences; empty means [os_id], which the
	// caller resolves (VerifierOptions.Audience).
	Audience []string `yaml:"audience"`
	// Leeway is the clock skew allowed for exp, nbf and iat (default 10s).
	Leeway Duration `yaml:"leeway"`
	// RequireExp rejects a token without exp (nil: true).
	RequireExp *bool `yaml:"require_exp"`
	// Validate false skips the signature (development only; nil: true).
	Validate *bool `yaml:"validate"`
	// TokenSource is header, cookie or both ("": header).
	TokenSource string `yaml:"token_source"`
	// Header is the credential header ("": Authorization).
	Header string `yaml:"header"`
	// Cookie is the credential cookie ("": access_token).
	Cookie string `yaml:"cookie"`
	// Claims names the claims read from the token.
	Claims ClaimNames `yaml:"claims"`
	// ForwardClaims are copied to the upstream as x-agentos-claim-<name>.
	ForwardClaims []string `yaml:"forward_claims"`
}

// ClaimNames are the names of the claims read from a token; "" means the
// default named on each field.
type ClaimNames struct {
	Scopes    string `yaml:"scopes"`     // default "scopes"
	UserID    string `yaml:"user_id"`    // default "sub"
	SessionID string `yaml:"session_id"` // default "session_id"
	Audience  string `yaml:"audience"`   // default "aud"
}

// Defaults of the jwt: section (CONTRACT §4).
const (
	DefaultAlgorithm   = "RS256"
	DefaultLeeway      = 10 * time.Second
	DefaultJWKSRefresh = 5 * time.Minute
	DefaultCacheTTL    = 5 * time.Minute
	DefaultCacheSize   = 100000
	// MinJWKSRefresh is the shortest jwt.jwks_refresh accepted.
	MinJWKSRefresh = time.Second
	// maxCacheSize bounds jwt.cache_size (about 50 GiB of entries would
	// be needed beyond it: a typo, not a plan).
	maxCacheSize  = 100_000_000
	DefaultHeader = "Authorization"
	DefaultCookie = "access_token"
	// MaxTokenBytes is the largest token Verify parses (CONTRACT §5: over
	// 8 KiB is an invalid token).
	MaxTokenBytes = 8 << 10
)

// DefaultJWTConfig is the jwt: section with nothing set: the durations at
// their defaults, every other field zero (= its default).
func DefaultJWTConfig() JWTConfig {
	return JWTConfig{
		Leeway:      Duration{DefaultLeeway},
		JWKSRefresh: Duration{DefaultJWKSRefresh},
		CacheTTL:    Duration{DefaultCacheTTL},
	}
}

// WithDefaults fills the empty names with the defaults.
func (n ClaimNames) WithDefaults() ClaimNames {
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

// AlgorithmNames is the effective algorithm allowlist: Algorithms, then
// Algorithm if not already listed; [RS256] when both are empty.
func (c *JWTConfig) AlgorithmNames() []string {
	names := make([]string, 0, len(c.Algorithms)+1)
	names = append(names, c.Algorithms...)
	if c.Algorithm != "" && !slices.Contains(names, c.Algorithm) {
		names = append(names, c.Algorithm)
	}
	if len(names) == 0 {
		names = append(names, DefaultAlgorithm)
	}
	return names
}

// ValidatesSignature reports whether signatures are verified (validate,
// default true).
func (c *JWTConfig) ValidatesSignature() bool { return c.Validate == nil || *c.Validate }

// RequiresExp reports whether a token without exp is refused (require_exp,
// default true).
func (c *JWTConfig) RequiresExp() bool { return c.RequireExp == nil || *c.RequireExp }

// HasSource reports whether a JWT source is configured: a key, a JWKS file
// or URL, an issuer to discover the JWKS from, or validate: false
// (CONTRACT §4).
func (c *JWTConfig) HasSource() bool {
	return len(c.VerificationKeys) > 0 || c.JWKSFile != "" || c.JWKSURL != "" || !c.ValidatesSignature() || c.DiscoversJWKS()
}

// DiscoversJWKS reports whether the JWKS URL comes from OIDC discovery:
// an issuer is set and no other key source is (a verification key, a JWKS
// file or URL), and signatures are verified. An issuer beside configured
// keys only checks iss: it never makes the service fetch anything.
func (c *JWTConfig) DiscoversJWKS() bool {
	return c.Issuer != "" && c.JWKSURL == "" && c.JWKSFile == "" && len(c.VerificationKeys) == 0 && c.ValidatesSignature()
}

// RemoteJWKS reports whether keys are fetched over HTTP: jwks_url, or
// discovery.
func (c *JWTConfig) RemoteJWKS() bool { return c.JWKSURL != "" || c.DiscoversJWKS() }

// TokenCacheSize is the effective jwt.cache_size; 0 means no cache.
func (c *JWTConfig) TokenCacheSize() int {
	if c.CacheSize == nil {
		return DefaultCacheSize
	}
	return *c.CacheSize
}

// Check returns every problem of the section, each prefixed by its YAML
// path ("jwt.algorithms[1]: ..."). It parses the keys and reads the JWKS
// file, so it finds exactly what NewVerifier would refuse (except what
// needs os_id, which Check does not know). Messages never quote key
// material.
func (c *JWTConfig) Check() []error {
	_, errs := c.compile(!c.RemoteJWKS(), nil)
	return errs
}

// jwtKeys is the compiled key material of a JWTConfig.
type jwtKeys struct {
	allowed algSet
	static  []verifyKey
	jwks    *KeySet // from jwks_file; nil without one
}

// compile checks every field and parses the keys. coverage asks for the
// check that each algorithm has a key of its type (skipped with
// validate: false); jwks, when non-nil, replaces jwks_file as the JWKS
// and is not checked for coverage (its keys may arrive later).
func (c *JWTConfig) compile(coverage bool, jwks JWKSource) (jwtKeys, []error) {
	var errs []error
	fail := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("jwt.%s: %s", path, fmt.Sprintf(format, args...)))
	}
	var out jwtKeys

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

	for i, s := range c.VerificationKeys {
		keys, err := parseVerificationKey(s)
		if err != nil {
			fail("verification_keys["+strconv.Itoa(i)+"]", "%v", err)
			continue
		}
		out.static = append(out.static, keys...)
	}
	if c.JWKSFile != "" && jwks == nil {
		ks, err := LoadJWKSFile(c.JWKSFile)
		if err != nil {
			fail("jwks_file", "%v", err)
		} else {
			out.jwks = ks
		}
	}

	if c.Leeway.Duration < 0 {
		fail("leeway", "must not be negative")
	}
	if c.JWKSRefresh.Duration < 0 {
		fail("jwks_refresh", "must not be negative")
	} else if c.JWKSRefresh.Duration > 0 && c.JWKSRefresh.Duration < MinJWKSRefresh {
		fail("jwks_refresh", "%s is too short: the JWKS is refreshed at most every %s", c.JWKSRefresh.Duration, MinJWKSRefresh)
	}
	errs = append(errs, c.checkRemote()...)
	if c.CacheTTL.Duration < 0 {
		fail("cache_ttl", "must not be negative (0s disables the verified-token cache)")
	}
	if n := c.TokenCacheSize(); n < 0 || n > maxCacheSize {
		fail("cache_size", "%d must be between 0 (no cache) and %d", n, maxCacheSize)
	}
	switch c.TokenSource {
	case "", "header", "cookie", "both":
	default:
		fail("token_source", "%q must be header, cookie or both", c.TokenSource)
	}
	if c.Header != "" && !IsHTTPToken(c.Header) {
		fail("header", "%q is not a valid HTTP header name", c.Header)
	}
	if c.Cookie != "" && !IsHTTPToken(c.Cookie) {
		fail("cookie", "%q is not a valid cookie name", c.Cookie)
	}
	for i, a := range c.Audience {
		if a == "" {
			fail("audience["+strconv.Itoa(i)+"]", "is empty")
		}
	}
	seen := make(map[string]int, len(c.ForwardClaims))
	for i, name := range c.ForwardClaims {
		path := "forward_claims[" + strconv.Itoa(i) + "]"
		switch {
		case name == "":
			fail(path, "is empty")
		case !IsHTTPToken(name):
			fail(path, "%q cannot be part of a header name (x-agentos-claim-<name>)", name)
		default:
			low := strings.ToLower(name)
			if j, dup := seen[low]; dup {
				fail(path, "%q is already forwarded by forward_claims[%d] (header names ignore case)", name, j)
			} else {
				seen[low] = i
			}
		}
	}

	// Every accepted algorithm needs a key of its type (CONTRACT §4),
	// unless no signature is checked or no JWT source is configured at all
	// (security key only: nothing to cover).
	if coverage && c.ValidatesSignature() && jwks == nil && c.HasSource() {
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
			fail(path, "%s%s has no key of its type: it needs %s in verification_keys or jwks_file", a, def, a.keyKind())
		}
	}
	return out, errs
}
