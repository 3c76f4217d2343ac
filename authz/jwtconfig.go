package authz

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/agentos-authz/agentos-authz/authz/internal/jwtauth"
)

// JWTConfig is the jwt: section of the configuration file (docs/CONTRACT.md §4).
// Its verifier fields compile into the jwtauth package's Config
// (verifierConfig); the credential and token-cache fields are authz's.
// A zero string, list or nil pointer means the default that the field's
// comment names; start from defaultJWTConfig, which also sets the two
// durations, so that an explicit "leeway: 0s" stays zero.
type JWTConfig struct {
	// VerificationKeys are PEM public keys or certificates (RS*, PS*, ES*,
	// EdDSA), JWK JSON, or HMAC secrets (HS*); JWT_VERIFICATION_KEY is
	// appended by the loader.
	VerificationKeys []string `yaml:"verification_keys"`
	// VerificationKeyFiles are paths of files holding one key each: a PEM
	// public key or certificate, a JWK, or for HS* a secret file used byte
	// for byte (a mounted Kubernetes Secret, say).
	VerificationKeyFiles []string `yaml:"verification_key_files"`
	// AllowShortHMACSecrets accepts HMAC secrets shorter than RFC 7518
	// §3.2 requires, with a warning, for issuers that cannot change theirs.
	AllowShortHMACSecrets bool `yaml:"allow_short_hmac_secrets"`
	// JWKSFile is the path of a static JWKS document (JWT_JWKS_FILE).
	JWKSFile string `yaml:"jwks_file"`
	// JWKSURL is a JWKS document fetched and refreshed in the background
	// (JWT_JWKS_URL).
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
	// caller resolves (ExpectedAudience).
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

// Defaults of the jwt: section (docs/CONTRACT.md §4); the verifier's own are in
// package jwtauth.
const (
	defaultCacheTTL  = 5 * time.Minute
	defaultCacheSize = 100000
	// maxCacheSize bounds jwt.cache_size (about 50 GiB of entries would
	// be needed beyond it: a typo, not a plan).
	maxCacheSize  = 100_000_000
	defaultHeader = "Authorization"
	defaultCookie = "access_token"
)

// defaultJWTConfig is the jwt: section with nothing set: the durations at
// their defaults, every other field zero (= its default).
func defaultJWTConfig() JWTConfig {
	return JWTConfig{
		Leeway:      Duration{jwtauth.DefaultLeeway},
		JWKSRefresh: Duration{jwtauth.DefaultJWKSRefresh},
		CacheTTL:    Duration{defaultCacheTTL},
	}
}

// verifierConfig is what the verifier reads of the section.
func (c *JWTConfig) verifierConfig() jwtauth.Config {
	return jwtauth.Config{
		VerificationKeys:      c.VerificationKeys,
		VerificationKeyFiles:  c.VerificationKeyFiles,
		AllowShortHMACSecrets: c.AllowShortHMACSecrets,
		JWKSFile:              c.JWKSFile,
		JWKSURL:               c.JWKSURL,
		JWKSRefresh:           c.JWKSRefresh.Duration,
		JWKSCAFile:            c.JWKSCAFile,
		JWKSAllowInsecure:     c.JWKSAllowInsecure,
		Algorithms:            c.Algorithms,
		Algorithm:             c.Algorithm,
		Issuer:                c.Issuer,
		VerifyAudience:        c.VerifyAudience,
		Audience:              c.Audience,
		Leeway:                c.Leeway.Duration,
		RequireExp:            c.RequireExp,
		Validate:              c.Validate,
		Claims: jwtauth.ClaimNames{
			Scopes:    c.Claims.Scopes,
			UserID:    c.Claims.UserID,
			SessionID: c.Claims.SessionID,
			Audience:  c.Claims.Audience,
		},
		ForwardClaims: c.ForwardClaims,
	}
}

// HasSource reports whether a JWT source is configured: a key, a JWKS file
// or URL, an issuer to discover the JWKS from, or validate: false
// (docs/CONTRACT.md §4).
func (c *JWTConfig) HasSource() bool {
	v := c.verifierConfig()
	return v.HasSource()
}

// RemoteJWKS reports whether keys are fetched over HTTP: jwks_url, or
// OIDC discovery from the issuer.
func (c *JWTConfig) RemoteJWKS() bool {
	v := c.verifierConfig()
	return v.RemoteJWKS()
}

// TokenCacheSize is the effective jwt.cache_size; 0 means no cache.
func (c *JWTConfig) TokenCacheSize() int {
	if c.CacheSize == nil {
		return defaultCacheSize
	}
	return *c.CacheSize
}

// compile checks the section and compiles it, once: the verifier's part
// (jwtauth.Compile parses the keys and reads the key, JWKS and CA files,
// so it finds exactly what the verifier would refuse, except what needs
// os_id) and the credential source; then the credential and token-cache
// fields. Each problem is a *FieldError naming its YAML path
// ("jwt.algorithms[1]"); messages never quote key material.
func (c *JWTConfig) compile() (tokenSource, *jwtauth.Compiled, []error) {
	var errs []error
	fail := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Field: "jwt." + path, Err: fmt.Errorf(format, args...)})
	}
	if c.JWKSURL != "" && c.JWKSFile != "" {
		fail("jwks_url", "set jwks_url (%s) or jwks_file (%s), not both", envJWKSURL, envJWKSFile)
	}
	v := c.verifierConfig()
	compiled, verr := jwtauth.Compile(&v)
	errs = append(errs, jwtFieldErrors(verr)...)
	if c.CacheTTL.Duration < 0 {
		fail("cache_ttl", "must not be negative (0s disables the verified-token cache)")
	}
	if n := c.TokenCacheSize(); n < 0 || n > maxCacheSize {
		fail("cache_size", "%d must be between 0 (no cache) and %d", n, maxCacheSize)
	}
	source, err := parseTokenSource(c.TokenSource)
	if err != nil {
		fail("token_source", "%v", err)
	}
	if c.Header != "" && !IsHTTPToken(c.Header) {
		fail("header", "%q is not a valid HTTP header name", c.Header)
	}
	if c.Cookie != "" && !IsHTTPToken(c.Cookie) {
		fail("cookie", "%q is not a valid cookie name", c.Cookie)
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
	return source, compiled, errs
}

// jwtFieldErrors turns the jwtauth package's problems into *FieldErrors
// ("jwt." + the path inside the section), the one error type of a
// configuration problem.
func jwtFieldErrors(errs []error) []error {
	out := make([]error, len(errs))
	for i, e := range errs {
		var p *jwtauth.Problem
		if errors.As(e, &p) {
			out[i] = &FieldError{Field: "jwt." + p.Field, Err: p.Err}
		} else {
			out[i] = &FieldError{Field: "jwt", Err: e}
		}
	}
	return out
}
