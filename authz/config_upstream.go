package authz

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/agentos-authz/agentos-authz/authz/internal/idtoken"
)

// UpstreamConfig is the upstream: section (docs/CONTRACT.md §4, §9): what
// the upstream AgentOS receives beside the request.
type UpstreamConfig struct {
	// IdentityToken replaces the Authorization header of a request allowed
	// with a verified JWT by a token this service signs (docs/CONTRACT.md
	// §9), so that AgentOS needs only this service's public key.
	IdentityToken bool `yaml:"identity_token"`
	// SigningKeyFile is the PEM private key those tokens are signed with:
	// RSA of 2048 bits or more (RS256, AgentOS's default algorithm, the
	// recommended key type), EC P-256 (ES256) or Ed25519 (EdDSA).
	SigningKeyFile string `yaml:"signing_key_file"`
	// Issuer is the iss claim of those tokens.
	Issuer string `yaml:"issuer"`
	// TokenTTL bounds each token's lifetime (never beyond the caller's exp).
	TokenTTL Duration `yaml:"token_ttl"`
	// ListingFilter is "upstream" (a filtered listing is allowed and
	// AgentOS filters with the caller's identity) or "deny" (it is a 403).
	ListingFilter string `yaml:"listing_filter"`
	// AgentOSVerifies says the upstream AgentOS keeps its own JWT
	// middleware (docs/CONTRACT.md §9, deployment 1): it silences the
	// listing-filter warning.
	AgentOSVerifies bool `yaml:"agentos_verifies"`
}

// Defaults of the upstream: section (docs/CONTRACT.md §4).
const (
	defaultUpstreamIssuer = "agentos-authz"
	defaultUpstreamTTL    = 60 * time.Second
	listingFilterUpstream = "upstream"
	listingFilterDeny     = "deny"
)

// defaultUpstreamConfig returns the upstream: section with nothing set.
func defaultUpstreamConfig() UpstreamConfig {
	return UpstreamConfig{
		Issuer:        defaultUpstreamIssuer,
		TokenTTL:      Duration{defaultUpstreamTTL},
		ListingFilter: listingFilterUpstream,
	}
}

// compileUpstreamSection validates the upstream: section of c; each
// problem names its field. A signing key file is read and parsed here,
// once: the key returned is the one New signs with (nil without a file).
func (c *Config) compileUpstreamSection() (*idtoken.Key, []error) {
	u := &c.Upstream
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Err: fmt.Errorf(format, args...)})
	}
	switch u.ListingFilter {
	case listingFilterUpstream, listingFilterDeny:
	default:
		add("upstream.listing_filter", "%q must be upstream (AgentOS filters listings itself) or deny (a listing that needs filtering is a 403)", u.ListingFilter)
	}
	if u.TokenTTL.Duration < time.Second {
		add("upstream.token_ttl", "%v must be at least 1s", u.TokenTTL.Duration)
	}
	if u.Issuer == "" {
		add("upstream.issuer", "must not be empty: it is the iss of the identity tokens (default %s)", defaultUpstreamIssuer)
	}
	if u.IdentityToken {
		if u.SigningKeyFile == "" {
			add("upstream.signing_key_file", "required with upstream.identity_token: true: the PEM private key that signs the identity tokens "+
				"(`agentos-authz keygen --alg RS256 --out PREFIX` writes one as PREFIX.key.pem)")
		}
		if c.JWT.Validate != nil && !*c.JWT.Validate {
			// The service would sign, with a key AgentOS trusts, whatever
			// identity an unverified token claims.
			add("upstream.identity_token", "true with jwt.validate: false would sign identities no one verified: "+
				"turn signature verification on, or identity tokens off")
		}
		if c.OSID == "" {
			add("os_id", "required with upstream.identity_token: true: it is the aud of the identity tokens, which AgentOS checks against its own id (%s)", envOSID)
		}
	}
	var key *idtoken.Key
	if u.SigningKeyFile != "" {
		var err error
		if key, err = idtoken.LoadKey(u.SigningKeyFile); err != nil {
			errs = append(errs, &FieldError{Field: "upstream.signing_key_file", Err: err})
		}
	}
	return key, errs
}

// upstreamWarnings are the upstream: settings of a valid c that weaken
// protection (docs/CONTRACT.md §9): with the default listing filter, a
// caller holding only per-resource scopes is allowed a listing, and an
// AgentOS that does not know the caller answers it with every resource.
func (c *Config) upstreamWarnings() []Warning {
	u := &c.Upstream
	var out []Warning
	if c.AuthorizationEnabled() && u.ListingFilter == listingFilterUpstream && !u.IdentityToken && !u.AgentOSVerifies {
		out = append(out, Warning{Field: "upstream.listing_filter",
			Msg: "upstream, but nothing makes AgentOS filter listings: a caller allowed GET /agents (or /teams, /workflows) " +
				"through one per-resource scope gets every resource from an AgentOS without its own JWT middleware. " +
				"Set upstream.identity_token: true (AgentOS verifies this service's tokens), or upstream.listing_filter: deny, " +
				"or upstream.agentos_verifies: true if AgentOS keeps its own middleware with the callers' keys"})
	}
	if u.IdentityToken && !c.JWT.HasSource() {
		out = append(out, Warning{Field: "upstream.identity_token",
			Msg: "true without a JWT source: only requests allowed with a verified JWT get an identity token; " +
				"the security key and service-account tokens pass through unchanged"})
	}
	return out
}

// upstreamPolicy is the compiled upstream: section of a snapshot.
type upstreamPolicy struct {
	// signer signs identity tokens; nil when upstream.identity_token is off.
	signer *idtoken.Signer
	// listingDeny: a listing that needs the filter is a 403.
	listingDeny bool
}

// compileUpstream builds the signer with the signing key Load read.
func compileUpstream(c *Config) (upstreamPolicy, error) {
	return compileUpstreamAfter(c, nil)
}

// compileUpstreamAfter is compileUpstream for a configuration reloaded
// after prev (nil: the first load), with the signing key its Load read:
// a new key signs from now on and prev's stays published beside it in the
// JWK Set, so tokens already handed out keep verifying for the rest of
// their life (docs/CONTRACT.md §9: during a key rotation both keys are
// published); the same key keeps prev's published set.
func compileUpstreamAfter(c *Config, prev *upstreamPolicy) (upstreamPolicy, error) {
	u := &c.Upstream
	p := upstreamPolicy{listingDeny: u.ListingFilter == listingFilterDeny}
	if !u.IdentityToken {
		return p, nil
	}
	key := c.compiled.upstreamKey
	if key == nil {
		// Load refuses identity_token without a signing key file.
		return upstreamPolicy{}, &FieldError{Field: "upstream.signing_key_file", Err: errors.New("no signing key loaded")}
	}
	var err error
	opts := idtoken.Options{Issuer: u.Issuer, Audience: c.OSID, TTL: u.TokenTTL.Duration}
	if prev != nil && prev.signer != nil {
		p.signer, err = prev.signer.Next(opts, key)
	} else {
		p.signer, err = idtoken.NewSigner(opts, key)
	}
	if err != nil {
		return upstreamPolicy{}, &FieldError{Field: "upstream", Err: err}
	}
	return p, nil
}

// upstreamFingerprint writes to h what the identity tokens kept in the
// verified-token cache depend on (the upstream: section, the os id, the
// signing key Load read, by its RFC 7638 thumbprint), so that Reload keeps
// the cache only while they are unchanged: a kept principal's
// identity-token slot was made, and its token signed, under these settings
// (and has no slot at all when identity tokens were off).
func upstreamFingerprint(h io.Writer, cfg *Config, key *idtoken.Key) {
	fmt.Fprintf(h, "upstream %#v %q\n", cfg.Upstream, cfg.OSID)
	if !cfg.Upstream.IdentityToken || key == nil {
		return
	}
	fmt.Fprintf(h, "signing key %s %s\n", key.Alg(), key.KeyID())
}
