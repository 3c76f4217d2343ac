package jwtauth

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/lestrrat-go/jwx/v2/jws"
)

// This file owns key selection: the JWKS source interface and the one
// jws.KeyProvider (keyRing) that picks the keys for a token, used by both
// signature paths (signature.go).

// jwksSource is where the JWKS comes from: a static file (staticJWKS) or a
// source that fetches and refreshes a JWKS URL. Implementations are safe for
// concurrent use; the Verifier calls them on the request's goroutine with the
// request's context.
type jwksSource interface {
	// Keys returns the current key set. It must be cheap (a snapshot, not a
	// fetch). An error or a nil set means no JWKS key for this token: the
	// static keys are still tried.
	Keys(ctx context.Context) (*keySet, error)
	// Refetch is called at most once per token, when the token's kid is in
	// no key of the current set (docs/CONTRACT.md §5: "after one refetch, for a JWKS
	// URL"). A fetching source refetches, rate-limited, and returns the new
	// set; a source with nothing new returns nil, nil.
	Refetch(ctx context.Context, kid string) (*keySet, error)
}

// staticJWKS is a jwksSource that never changes (jwt.jwks_file).
type staticJWKS struct{ set *keySet }

var _ jwksSource = staticJWKS{}

// newStaticJWKS serves set for ever.
func newStaticJWKS(set *keySet) staticJWKS { return staticJWKS{set: set} }

// Keys returns the fixed set.
func (s staticJWKS) Keys(context.Context) (*keySet, error) { return s.set, nil }

// Refetch has nothing new to offer.
func (s staticJWKS) Refetch(context.Context, string) (*keySet, error) { return nil, nil }

// Why a keyRing refused to hand out keys; Verify maps them to the detail.
var (
	errAlgNotAllowed = errors.New("algorithm not allowed")
	errNoKey         = errors.New("no key for this token")
	errCritHeader    = errors.New("unsupported critical header")
	errSignature     = errors.New("signature verification failed")
)

// keyRing is the one jws.KeyProvider of a Verifier. It pins the algorithm:
// the token's alg must be allowlisted, and each key is offered only for an
// algorithm of its own type — never inferred from the key, never fetched
// from the token's jku/x5u (JWX docs/01-jwt.md: taking alg from the key is
// brute force; a jku lets the token pick its own key). docs/CONTRACT.md §5 order:
// the JWKS first (kid → that key; no kid, or a kid no key has after one
// refetch → the kid-less JWKS keys), then the static keys in order.
type keyRing struct {
	allowed algSet
	jwks    jwksSource // nil: no JWKS
	static  []verifyKey
}

var _ jws.KeyProvider = (*keyRing)(nil)

// FetchKeys sinks the candidate keys for sig, in the order they are tried.
// It is the key selection of jws.Verify, which Verifier.verifySignature
// uses only for the tokens its own header reading leaves to jwx (see
// compactHeader); both select keys with appendKeys.
func (r *keyRing) FetchKeys(ctx context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
	h := sig.ProtectedHeaders()
	alg, ok := parseAlg(string(h.Algorithm()))
	if !ok || !r.allowed.has(alg) {
		return errAlgNotAllowed
	}
	// RFC 7515 §4.1.11: a crit extension we do not understand (b64 among
	// them) makes the token invalid.
	// The accessors, not Get: no interface boxing and no string switch per
	// call. Critical is non-nil exactly when Get("crit") reports the header
	// present (an empty list included); b64 is a private parameter.
	if h.Critical() != nil {
		return errCritHeader
	}
	if _, b64 := h.PrivateParams()["b64"]; b64 {
		return errCritHeader
	}
	var buf [8]any
	keys := r.appendKeys(ctx, buf[:0], alg, h.KeyID())
	if len(keys) == 0 {
		return errNoKey
	}
	for _, k := range keys {
		sink.Key(alg.jwa(), k)
	}
	return nil
}

// appendKeys appends to dst the raw keys to try for a token of the
// allowlisted alg naming kid ("" for none), in order: the JWKS candidates
// (jwksCandidates, which may refetch once), then the static keys; only
// keys whose type (and own alg) fit alg.
func (r *keyRing) appendKeys(ctx context.Context, dst []any, alg sigAlg, kid string) []any {
	if r.jwks != nil {
		for _, k := range r.jwksCandidates(ctx, kid) {
			if k.algs.has(alg) {
				dst = append(dst, k.raw)
			}
		}
	}
	for _, k := range r.static {
		// A static key with a kid (a JWK) serves only tokens naming it;
		// PEM keys and secrets have none and serve every token.
		if k.kid != "" && k.kid != kid {
			continue
		}
		if k.algs.has(alg) {
			dst = append(dst, k.raw)
		}
	}
	return dst
}

// jwksCandidates picks the JWKS keys for a token's kid (docs/CONTRACT.md §5): the
// keys with that kid only, else (no kid, or a kid unknown even after one
// refetch) the keys without a kid.
func (r *keyRing) jwksCandidates(ctx context.Context, kid string) []verifyKey {
	set, err := r.jwks.Keys(ctx)
	if err != nil {
		set = nil
	}
	if kid == "" {
		if set == nil {
			return nil
		}
		return set.kidless
	}
	if set != nil {
		if keys, ok := set.byKID[kid]; ok {
			return keys
		}
	}
	if fresh, err := r.jwks.Refetch(ctx, kid); err == nil && fresh != nil {
		set = fresh
		if keys, ok := set.byKID[kid]; ok {
			return keys
		}
	}
	if set == nil {
		return nil
	}
	return set.kidless
}

// kidSettled reports whether a signature failure of raw stays one while
// the key set does: without a fetching JWKS source the keys tried never
// change; with one, only when the token names no kid or a kid of the
// current set (no refetch was involved; a kid the set lacks may come with
// a later refetch). A header this package does not read itself (see
// compactHeader) is not settled under a fetching source.
func (r *keyRing) kidSettled(ctx context.Context, raw string) bool {
	if r.jwks == nil {
		return true
	}
	if _, static := r.jwks.(staticJWKS); static {
		return true
	}
	end := strings.IndexByte(raw, '.')
	if end < 0 {
		return false
	}
	hdr, err := base64.RawURLEncoding.DecodeString(raw[:end])
	if err != nil {
		return false
	}
	_, kid, ok := compactHeader(hdr)
	if !ok {
		return false
	}
	if kid == "" {
		return true
	}
	set, err := r.jwks.Keys(ctx)
	if err != nil || set == nil {
		return false
	}
	_, known := set.byKID[kid]
	return known
}
