package authz

import (
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/agentos-authz/agentos-authz/authz/internal/idtoken"
	"github.com/agentos-authz/agentos-authz/authz/internal/jwtauth"
	"github.com/agentos-authz/agentos-authz/scopes"
)

// This file is what the upstream AgentOS receives beyond the headers of
// docs/CONTRACT.md §5 (§9): the identity token that replaces a verified
// JWT, and the listing filter's "deny".
//
// Identity tokens stay off the common path: the token re-issued for a
// caller token lives beside that token's principal in the verified-token
// cache (tokencache.go), so it has the cache's key, bounds and eviction,
// and is signed again only when it is no longer idtoken.Token.Fresh. A
// token is a credential: it is never logged, and it never enters the
// decision log or the dynamic metadata.

// HeaderAuthorization is the upstream header an identity token is sent in
// ("Bearer <t>"), replacing the caller's.
const HeaderAuthorization = "authorization"

// errNoSlot is never expected: with identity tokens on, every principal
// of a verified JWT carries its slot (verifyToken).
var errNoSlot = errors.New("no identity-token slot for a verified token")

// reissued is the identity-token slot of one verified caller token: its
// exp, which bounds every token signed for it, and the last token signed,
// shared by the cache entry and every decision that reads it.
type reissued struct {
	// exp is the caller token's exp; zero when it has none.
	exp time.Time
	// tok is the last token signed for the caller token, nil before the
	// first. Concurrent decisions may both sign a stale token; the last
	// store wins, and either token is valid.
	tok atomic.Pointer[signedHeader]
}

// signedHeader is a signed token and the header value that carries it,
// built once so a cached decision does not allocate it again.
type signedHeader struct {
	tok    idtoken.Token
	header string
}

// newReissued returns the identity-token slot for a verified identity, or
// nil when identity tokens are off (then no principal carries one).
func (u *upstreamPolicy) newReissued(id *jwtauth.Identity) *reissued {
	if u.signer == nil {
		return nil
	}
	return &reissued{exp: id.Expires}
}

// addIdentityToken appends to the allowed decision d the authorization
// header carrying the identity token of p (docs/CONTRACT.md §9): the one
// kept beside the caller token while it is fresh, else a newly signed one,
// which is then kept. An error (the key, the system's randomness) leaves d
// unchanged: the caller denies.
func (u *upstreamPolicy) addIdentityToken(p *principal, now time.Time, d *Decision) error {
	slot := p.up
	if slot == nil {
		return errNoSlot
	}
	if h := slot.tok.Load(); h != nil && h.tok.Fresh(now) {
		d.Upstream = append(d.Upstream, Header{Name: HeaderAuthorization, Value: h.header})
		return nil
	}
	tok, err := u.signer.Sign(now, idtoken.Caller{Subject: p.userID, SessionID: p.sessionID, Scopes: p.scopeList(), Expires: slot.exp})
	if err != nil {
		return err
	}
	h := &signedHeader{tok: tok, header: "Bearer " + tok.Value}
	// Keep one copy of the token: the kept Token's Value is the header's
	// tail, so a cached entry holds the token's bytes once.
	h.tok.Value = h.header[len("Bearer "):]
	slot.tok.Store(h)
	d.Upstream = append(d.Upstream, Header{Name: HeaderAuthorization, Value: h.header})
	return nil
}

// scopeList is the principal's scopes one by one, in token order: the
// scopes claim of its identity token.
func (p *principal) scopeList() []string {
	if p.extra != nil && p.extra.list != nil {
		return p.extra.list
	}
	if p.scopes == "" {
		return nil
	}
	return strings.Split(p.scopes, " ")
}

// identityToken runs the allow path's identity-token step on d, allowed
// for the principal p authenticated as auth, or returns the denial that
// replaces d (ok false). Only a verified JWT is
// replaced (the security key and service-account tokens pass through
// unchanged, docs/CONTRACT.md §9). When signing fails the request is
// denied 503 (fail closed: the upstream would otherwise receive the
// caller's own token, or none), and the fault is logged without any part
// of a token or key.
func (s *snapshot) identityToken(r *Request, p *principal, auth string, d *Decision, log *zap.Logger) (Decision, bool) {
	if s.up.signer == nil || auth != authJWT {
		return Decision{}, true
	}
	if err := s.up.addIdentityToken(p, s.clock(), d); err != nil {
		log.Error("identity token not signed; the request is denied 503 (docs/CONTRACT.md §9)", zap.Error(err))
		deny := s.deny(r, ReasonIdentityTokenFailed, DetailUnavailable)
		deny.Rule, deny.Required, deny.Matched = d.Rule, d.Required, d.Matched
		deny.UserID, deny.Auth = d.UserID, d.Auth
		return deny, false
	}
	return Decision{}, true
}

// forbidListing answers a listing that needs the filter when
// upstream.listing_filter is deny (docs/CONTRACT.md §9): 403 with the
// route's required scopes, the detail a caller without them gets.
func (s *snapshot) forbidListing(r *Request, d Decision, res *scopes.Result) Decision {
	deny := s.deny(r, ReasonInsufficientScopes, detailScopesPrefix+strings.Join(res.Rule.Scopes, ", "))
	deny.Rule, deny.Required, deny.Matched = d.Rule, d.Required, d.Matched
	for _, g := range res.Grants() {
		if g.Listing {
			deny.Missing = append(deny.Missing, g.Required)
		}
	}
	deny.UserID, deny.Auth = d.UserID, d.Auth
	return deny
}

// UpstreamJWKS is the public JWK Set of the identity-token signing keys
// (docs/CONTRACT.md §9), served at /.well-known/jwks.json on the admin
// listener for AgentOS's JWT_JWKS_FILE; nil when identity tokens are off.
// It is read from the current configuration on each call.
func (a *Authorizer) UpstreamJWKS() []byte {
	if s := a.snap.Load(); s != nil && s.up.signer != nil {
		return s.up.signer.JWKS()
	}
	return nil
}
