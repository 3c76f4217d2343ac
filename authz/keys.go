package authz

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// This file owns the verification key material: the signature algorithms we
// accept, the parsing of jwt.verification_keys and JWKS documents into
// verifyKeys, and the one jws.KeyProvider (keyRing) that picks the keys for
// a token. It never fetches anything: a remote JWKS is a JWKSource someone
// else implements.

// sigAlg is a JWS signature algorithm this service can verify. Each is a bit
// in an algSet.
type sigAlg uint8

const (
	algHS256 sigAlg = iota
	algHS384
	algHS512
	algRS256
	algRS384
	algRS512
	algPS256
	algPS384
	algPS512
	algES256
	algES384
	algES512
	algEdDSA
	algCount
)

// parseAlg maps a JOSE "alg" name to a sigAlg. Names are case-sensitive
// (RFC 7515 §4.1.1), so "rs256" and every spelling of "none" are refused.
func parseAlg(name string) (sigAlg, bool) {
	switch name {
	case "HS256":
		return algHS256, true
	case "HS384":
		return algHS384, true
	case "HS512":
		return algHS512, true
	case "RS256":
		return algRS256, true
	case "RS384":
		return algRS384, true
	case "RS512":
		return algRS512, true
	case "PS256":
		return algPS256, true
	case "PS384":
		return algPS384, true
	case "PS512":
		return algPS512, true
	case "ES256":
		return algES256, true
	case "ES384":
		return algES384, true
	case "ES512":
		return algES512, true
	case "EdDSA":
		return algEdDSA, true
	}
	return 0, false
}

// jwa returns the jwx name of a.
func (a sigAlg) jwa() jwa.SignatureAlgorithm {
	switch a {
	case algHS256:
		return jwa.HS256
	case algHS384:
		return jwa.HS384
	case algHS512:
		return jwa.HS512
	case algRS256:
		return jwa.RS256
	case algRS384:
		return jwa.RS384
	case algRS512:
		return jwa.RS512
	case algPS256:
		return jwa.PS256
	case algPS384:
		return jwa.PS384
	case algPS512:
		return jwa.PS512
	case algES256:
		return jwa.ES256
	case algES384:
		return jwa.ES384
	case algES512:
		return jwa.ES512
	case algEdDSA:
		return jwa.EdDSA
	}
	return jwa.NoSignature
}

func (a sigAlg) String() string { return string(a.jwa()) }

// keyKind says what key an algorithm needs, for configuration errors.
func (a sigAlg) keyKind() string {
	switch a {
	case algHS256, algHS384, algHS512:
		return "an HMAC secret"
	case algRS256, algRS384, algRS512, algPS256, algPS384, algPS512:
		return "an RSA public key or certificate"
	case algES256:
		return "an EC P-256 public key or certificate"
	case algES384:
		return "an EC P-384 public key or certificate"
	case algES512:
		return "an EC P-521 public key or certificate"
	case algEdDSA:
		return "an Ed25519 public key or certificate"
	}
	return "a key"
}

// algSet is a set of sigAlgs.
type algSet uint16

func (s algSet) has(a sigAlg) bool { return s&(1<<a) != 0 }
func (s *algSet) add(a sigAlg)     { *s |= 1 << a }

// algs lists the members of s in sigAlg order.
func (s algSet) algs() []sigAlg {
	var out []sigAlg
	for a := range algCount {
		if s.has(a) {
			out = append(out, a)
		}
	}
	return out
}

// verifyKey is one public key or HMAC secret, ready for jws: raw is
// *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or []byte, so no
// per-request conversion happens.
type verifyKey struct {
	kid  string
	algs algSet // the algorithms this key may verify: its type (and curve), narrowed by its own "alg"
	raw  any
}

// fittingAlgs is what a raw public key may verify. It starts from
// jws.AlgorithmsForKey (the key's type) and narrows EC keys to the one
// algorithm of their curve and OKP keys to Ed25519, so an X25519 or a P-224
// key fits nothing.
func fittingAlgs(raw any) algSet {
	byType, err := jws.AlgorithmsForKey(raw)
	if err != nil {
		return 0
	}
	var typed algSet
	for _, name := range byType {
		if a, ok := parseAlg(string(name)); ok {
			typed.add(a)
		}
	}
	var fit algSet
	switch k := raw.(type) {
	case []byte:
		if len(k) > 0 {
			fit = 1<<algHS256 | 1<<algHS384 | 1<<algHS512
		}
	case *rsa.PublicKey:
		fit = 1<<algRS256 | 1<<algRS384 | 1<<algRS512 | 1<<algPS256 | 1<<algPS384 | 1<<algPS512
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			fit.add(algES256)
		case elliptic.P384():
			fit.add(algES384)
		case elliptic.P521():
			fit.add(algES512)
		}
	case ed25519.PublicKey:
		if len(k) == ed25519.PublicKeySize {
			fit.add(algEdDSA)
		}
	}
	return fit & typed
}

// describeKey names a raw key's type for messages (never its material).
func describeKey(raw any) string {
	if priv, ok := raw.(crypto.Signer); ok {
		raw = priv.Public()
	}
	switch k := raw.(type) {
	case []byte:
		return "an HMAC secret"
	case *rsa.PublicKey:
		return fmt.Sprintf("an RSA key (%d bits)", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "an EC " + k.Curve.Params().Name + " key"
	case ed25519.PublicKey:
		return "an Ed25519 key"
	}
	return fmt.Sprintf("a %T key", raw)
}

// fromJWK turns a parsed JWK into a verifyKey: private keys give their public
// half, and a key's own "alg" narrows what it may verify.
func fromJWK(key jwk.Key) (verifyKey, error) {
	if use := key.KeyUsage(); use != "" && use != string(jwk.ForSignature) {
		return verifyKey{}, fmt.Errorf("is an encryption key (use %q), not a signature key", use)
	}
	var raw any
	if key.KeyType() == jwa.OctetSeq {
		var secret []byte
		if err := key.Raw(&secret); err != nil || len(secret) == 0 {
			return verifyKey{}, errors.New("is an empty or unreadable symmetric key")
		}
		raw = secret
	} else {
		pub, err := jwk.PublicKeyOf(key)
		if err != nil {
			return verifyKey{}, fmt.Errorf("is a %s key without a usable public key", key.KeyType())
		}
		if err := pub.Raw(&raw); err != nil {
			return verifyKey{}, fmt.Errorf("is a %s key that cannot be used", key.KeyType())
		}
	}
	fit := fittingAlgs(raw)
	if fit == 0 {
		return verifyKey{}, fmt.Errorf("is %s, which fits no supported signature algorithm", describeKey(raw))
	}
	if own := key.Algorithm().String(); own != "" {
		a, ok := parseAlg(own)
		if !ok {
			return verifyKey{}, fmt.Errorf("has alg %q, which is not a supported signature algorithm", own)
		}
		if !fit.has(a) {
			return verifyKey{}, fmt.Errorf("has alg %s, which does not fit %s", a, describeKey(raw))
		}
		fit = 1 << a
	}
	return verifyKey{kid: key.KeyID(), algs: fit, raw: raw}, nil
}

// parseVerificationKey reads one jwt.verification_keys entry (CONTRACT §3):
// PEM (public key, certificate, or a private key whose public half is used)
// for the asymmetric algorithms, JWK or JWK Set JSON, or else an HMAC
// secret, taken byte for byte. A PEM that does not parse is an error, never
// an HMAC secret: that is what keeps an RSA public key from ever becoming
// the secret of an HS256 forgery. Errors never quote the key.
func parseVerificationKey(s string) ([]verifyKey, error) {
	t := strings.TrimSpace(s)
	switch {
	case t == "":
		return nil, errors.New("is empty")
	case strings.Contains(t, "-----BEGIN "):
		block, _ := pem.Decode([]byte(t))
		if block == nil {
			return nil, errors.New("looks like PEM but has no readable PEM block")
		}
		if strings.Contains(block.Type, "ENCRYPTED") {
			return nil, fmt.Errorf("is an encrypted PEM block (%s): give the public key or certificate", block.Type)
		}
		// jwk.ParseKey(pem, jwk.WithPEM(true)) in two steps, to tell a
		// block that does not parse from a key type we cannot use.
		raw, _, err := jwk.DecodePEM([]byte(t))
		if err != nil {
			return nil, fmt.Errorf("is a PEM %s block that does not parse as a public key, certificate or private key", block.Type)
		}
		key, err := jwk.FromRaw(raw)
		if err != nil {
			return nil, fmt.Errorf("is %s, which fits no supported signature algorithm", describeKey(raw))
		}
		k, err := fromJWK(key)
		if err != nil {
			return nil, err
		}
		return []verifyKey{k}, nil
	case strings.HasPrefix(t, "{"):
		set, err := jwk.Parse([]byte(t))
		if err != nil {
			return nil, errors.New("is JSON but not a valid JWK or JWK Set")
		}
		if set.Len() == 0 {
			return nil, errors.New("is JSON but holds no JWK")
		}
		keys := make([]verifyKey, 0, set.Len())
		for i := range set.Len() {
			key, _ := set.Key(i)
			k, err := fromJWK(key)
			if err != nil {
				return nil, fmt.Errorf("key %d %w", i, err)
			}
			keys = append(keys, k)
		}
		return keys, nil
	}
	return []verifyKey{{algs: 1<<algHS256 | 1<<algHS384 | 1<<algHS512, raw: []byte(s)}}, nil
}

// KeySet is an immutable JWKS indexed for verification: keys by kid, and the
// keys without a kid. Keys for encryption (use: enc), keys whose own alg is
// not a supported signature algorithm, and key types that fit no algorithm
// are left out. Safe for concurrent use.
type KeySet struct {
	byKID   map[string][]verifyKey
	kidless []verifyKey
	n       int
	skipped int
}

// NewKeySet indexes set. It fails when no key of set is usable for
// verification, naming why the first unusable key was left out.
func NewKeySet(set jwk.Set) (*KeySet, error) {
	ks := &KeySet{byKID: make(map[string][]verifyKey)}
	var firstErr error
	for i := range set.Len() {
		key, _ := set.Key(i)
		k, err := fromJWK(key)
		if err != nil {
			ks.skipped++
			if firstErr == nil {
				firstErr = fmt.Errorf("key %d %w", i, err)
			}
			continue
		}
		ks.n++
		if k.kid == "" {
			ks.kidless = append(ks.kidless, k)
		} else {
			ks.byKID[k.kid] = append(ks.byKID[k.kid], k)
		}
	}
	if ks.n == 0 {
		if firstErr != nil {
			return nil, fmt.Errorf("holds no usable signature key (%w)", firstErr)
		}
		return nil, errors.New("holds no keys")
	}
	return ks, nil
}

// ParseJWKS parses a JWKS document (or a single JWK) into a KeySet.
func ParseJWKS(data []byte) (*KeySet, error) {
	set, err := jwk.Parse(data)
	if err != nil {
		return nil, errors.New("is not a JWK Set (JSON with a \"keys\" list)")
	}
	return NewKeySet(set)
}

// maxJWKSBytes bounds a JWKS document; real ones are a few KiB.
const maxJWKSBytes = 1 << 20

// LoadJWKSFile reads and parses the JWKS file at path.
func LoadJWKSFile(path string) (*KeySet, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%q does not exist", path)
		}
		return nil, fmt.Errorf("%q cannot be read: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%q cannot be read: %w", path, err)
	}
	if len(data) > maxJWKSBytes {
		return nil, fmt.Errorf("%q is larger than 1 MiB", path)
	}
	ks, err := ParseJWKS(data)
	if err != nil {
		return nil, fmt.Errorf("%q %w", path, err)
	}
	return ks, nil
}

// Len is the number of usable keys.
func (s *KeySet) Len() int { return s.n }

// Skipped is the number of keys of the document left out as unusable.
func (s *KeySet) Skipped() int { return s.skipped }

// fits reports whether some key of s may verify a.
func (s *KeySet) fits(a sigAlg) bool {
	for _, k := range s.kidless {
		if k.algs.has(a) {
			return true
		}
	}
	for _, keys := range s.byKID {
		for _, k := range keys {
			if k.algs.has(a) {
				return true
			}
		}
	}
	return false
}

// JWKSource is where the JWKS comes from: a static file (StaticJWKS) or a
// source that fetches and refreshes a JWKS URL. Implementations are safe for
// concurrent use; the Verifier calls them on the request's goroutine with the
// request's context.
type JWKSource interface {
	// Keys returns the current key set. It must be cheap (a snapshot, not a
	// fetch). An error or a nil set means no JWKS key for this token: the
	// static keys are still tried.
	Keys(ctx context.Context) (*KeySet, error)
	// Refetch is called at most once per token, when the token's kid is in
	// no key of the current set (CONTRACT §5: "after one refetch, for a JWKS
	// URL"). A fetching source refetches, rate-limited, and returns the new
	// set; a source with nothing new returns nil, nil.
	Refetch(ctx context.Context, kid string) (*KeySet, error)
}

// StaticJWKS is a JWKSource that never changes (jwt.jwks_file).
type StaticJWKS struct{ set *KeySet }

var _ JWKSource = StaticJWKS{}

// NewStaticJWKS serves set for ever.
func NewStaticJWKS(set *KeySet) StaticJWKS { return StaticJWKS{set: set} }

// Keys returns the fixed set.
func (s StaticJWKS) Keys(context.Context) (*KeySet, error) { return s.set, nil }

// Refetch has nothing new to offer.
func (s StaticJWKS) Refetch(context.Context, string) (*KeySet, error) { return nil, nil }

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
// brute force; a jku lets the token pick its own key). CONTRACT §5 order:
// the JWKS first (kid → that key; no kid, or a kid no key has after one
// refetch → the kid-less JWKS keys), then the static keys in order.
type keyRing struct {
	allowed algSet
	jwks    JWKSource // nil: no JWKS
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

// jwksCandidates picks the JWKS keys for a token's kid (CONTRACT §5): the
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
