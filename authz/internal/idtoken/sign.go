package idtoken

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// Options are the settings of a Signer (docs/CONTRACT.md §4, upstream.*).
type Options struct {
	// Issuer is the iss claim (upstream.issuer).
	Issuer string
	// Audience is the one aud entry: the AgentOS id (os_id).
	Audience string
	// TTL bounds each token's lifetime (upstream.token_ttl).
	TTL time.Duration
}

// Caller is what the verified caller token says, as §9 carries it over.
type Caller struct {
	// Subject is the caller's user id; "" leaves sub out.
	Subject string
	// SessionID is the caller's session id; "" leaves session_id out.
	SessionID string
	// Scopes are the caller's valid scopes, in token order; nil is an
	// empty list.
	Scopes []string
	// Expires is the caller token's exp; zero when it has none.
	Expires time.Time
}

// Signer signs identity tokens with the newest of its keys and publishes
// all of them. It is immutable and safe for concurrent use.
type Signer struct {
	key *Key
	// previous are the other published keys, the newest first.
	previous []*Key
	// prefix is the encoded protected header and its dot: constant per key.
	prefix string
	opts   Options
	margin time.Duration
	jwks   []byte
}

// NewSigner returns a Signer that signs with current and publishes current
// and previous (during a key rotation: tokens signed by the previous key
// stay verifiable until they expire, and AgentOS can be given the new key
// before it is used). A previous key with current's kid is left out.
func NewSigner(o Options, current *Key, previous ...*Key) (*Signer, error) {
	var problems []error
	if o.Issuer == "" {
		problems = append(problems, errors.New("the issuer is empty"))
	}
	if o.Audience == "" {
		problems = append(problems, errors.New("the audience (the AgentOS id) is empty"))
	}
	if o.TTL < time.Second {
		problems = append(problems, fmt.Errorf("the token ttl %v is under one second", o.TTL))
	}
	if current == nil {
		problems = append(problems, errors.New("no signing key"))
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	jwks, err := PublicJWKS(append([]*Key{current}, previous...)...)
	if err != nil {
		return nil, err
	}
	hdr, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{current.Alg(), current.kid, "JWT"})
	if err != nil {
		return nil, fmt.Errorf("protected header: %w", err)
	}
	var others []*Key
	for _, k := range previous {
		if k != nil && k.kid != current.kid && !slices.ContainsFunc(others, func(o *Key) bool { return o.kid == k.kid }) {
			others = append(others, k)
		}
	}
	return &Signer{
		key:      current,
		previous: others,
		prefix:   base64.RawURLEncoding.EncodeToString(hdr) + ".",
		opts:     o,
		margin:   Margin(o.TTL),
		jwks:     jwks,
	}, nil
}

// Key is the key the Signer signs with.
func (s *Signer) Key() *Key { return s.key }

// Next is the Signer that follows s after a configuration reload, with
// options o and the signing key now in upstream.signing_key_file. A new
// key signs from now on and s's key stays published beside it, so tokens
// already handed out keep verifying for the rest of their life; keys
// older than s's are dropped (their tokens outlived one ttl unless two
// rotations came within one). The same key (same kid) keeps s's published
// set as it is.
func (s *Signer) Next(o Options, key *Key) (*Signer, error) {
	if key != nil && key.kid == s.key.kid {
		return NewSigner(o, key, s.previous...)
	}
	return NewSigner(o, key, s.key)
}

// JWKS is the public JWK Set (RFC 7517) of the Signer's keys, the signing
// key first, ready to serve as application/json at /.well-known/jwks.json.
// The caller owns the returned copy.
func (s *Signer) JWKS() []byte { return bytes.Clone(s.jwks) }

// PublicJWKS renders the public halves of keys as a JWK Set, in order, each
// with its kid, alg and "use": "sig", indented and ending in a newline.
// Keys with a kid already listed are left out.
func PublicJWKS(keys ...*Key) ([]byte, error) {
	set := jwk.NewSet()
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if k == nil {
			return nil, errors.New("JWK Set: nil key")
		}
		if seen[k.kid] {
			continue
		}
		seen[k.kid] = true
		if err := set.AddKey(k.pub); err != nil {
			return nil, fmt.Errorf("JWK Set: %w", err)
		}
	}
	out, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("JWK Set: %w", err)
	}
	return append(out, '\n'), nil
}

// claims is the §9 claim set, in the order it is written.
type claims struct {
	Iss       string   `json:"iss"`
	Sub       string   `json:"sub,omitempty"`
	Aud       []string `json:"aud"`
	SessionID string   `json:"session_id,omitempty"`
	Scopes    []string `json:"scopes"`
	Iat       int64    `json:"iat"`
	Exp       int64    `json:"exp"`
	Jti       string   `json:"jti"`
}

// jtiBytes is the jti's entropy: 128 bits.
const jtiBytes = 16

// Sign returns a token for c issued at now (docs/CONTRACT.md §9): iss,
// aud [Audience], sub and session_id when c has them, scopes (a list), iat
// now, exp the earlier of now + TTL and c.Expires (whole seconds, never
// after c.Expires), and a random 128-bit jti. An error is a fault of the
// key or of the system's randomness, never of c.
func (s *Signer) Sign(now time.Time, c Caller) (Token, error) {
	iat := now.Unix()
	exp := now.Add(s.opts.TTL).Unix()
	capped := false
	if !c.Expires.IsZero() {
		// Unix floors, so the token never outlives the caller's.
		if ce := c.Expires.Unix(); ce <= exp {
			exp, capped = ce, true
		}
	}
	var id [jtiBytes]byte
	if _, err := rand.Read(id[:]); err != nil {
		return Token{}, fmt.Errorf("jti: %w", err)
	}
	scopes := c.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	payload, err := json.Marshal(claims{
		Iss:       s.opts.Issuer,
		Sub:       c.Subject,
		Aud:       []string{s.opts.Audience},
		SessionID: c.SessionID,
		Scopes:    scopes,
		Iat:       iat,
		Exp:       exp,
		Jti:       base64.RawURLEncoding.EncodeToString(id[:]),
	})
	if err != nil {
		return Token{}, fmt.Errorf("claims: %w", err)
	}

	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(s.prefix)+enc.EncodedLen(len(payload))+1+enc.EncodedLen(s.sigSize()))
	buf = append(buf, s.prefix...)
	buf = enc.AppendEncode(buf, payload)
	sig, err := s.sign(buf)
	if err != nil {
		return Token{}, err
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)

	renew := exp - int64(s.margin/time.Second)
	if capped {
		// Signing again cannot give a later exp: keep this one.
		renew = math.MaxInt64
	}
	return Token{Value: string(buf), exp: exp, renew: renew}, nil
}

// sigSize is the length of the key's signatures.
func (s *Signer) sigSize() int {
	switch k := s.key.priv.(type) {
	case *rsa.PrivateKey:
		return k.Size()
	case *ecdsa.PrivateKey:
		return 64
	}
	return ed25519.SignatureSize
}

// sign signs the JWS signing input (RFC 7515 §5.1) with the key's
// algorithm, in the JWS encoding of RFC 7518 §3.
func (s *Signer) sign(input []byte) ([]byte, error) {
	switch s.key.alg {
	case jwa.RS256:
		d := sha256.Sum256(input)
		sig, err := rsa.SignPKCS1v15(nil, s.key.priv.(*rsa.PrivateKey), crypto.SHA256, d[:])
		if err != nil {
			return nil, fmt.Errorf("sign RS256: %w", err)
		}
		return sig, nil
	case jwa.ES256:
		d := sha256.Sum256(input)
		// SignASN1 rather than Sign: Sign re-parses the same DER into
		// big.Ints (60 more allocations).
		der, err := ecdsa.SignASN1(rand.Reader, s.key.priv.(*ecdsa.PrivateKey), d[:])
		if err != nil {
			return nil, fmt.Errorf("sign ES256: %w", err)
		}
		sig, ok := rawECDSA(der, 32)
		if !ok {
			return nil, errors.New("sign ES256: unexpected signature encoding")
		}
		return sig, nil
	case jwa.EdDSA:
		return ed25519.Sign(s.key.priv.(ed25519.PrivateKey), input), nil
	}
	return nil, fmt.Errorf("no signer for %s", s.key.alg)
}

// rawECDSA converts an ASN.1 DER ECDSA signature, SEQUENCE { INTEGER r,
// INTEGER s }, to the JWS form of RFC 7518 §3.4: r and s as size-byte
// big-endian integers, concatenated. It accepts only the short-form
// lengths a P-256 signature has (at most 72 bytes).
func rawECDSA(der []byte, size int) ([]byte, bool) {
	if len(der) < 2 || der[0] != 0x30 || int(der[1]) != len(der)-2 || der[1] >= 0x80 {
		return nil, false
	}
	out := make([]byte, 2*size)
	rest := der[2:]
	for i := range 2 {
		if len(rest) < 2 || rest[0] != 0x02 || rest[1] >= 0x80 || int(rest[1]) > len(rest)-2 {
			return nil, false
		}
		n := rest[2 : 2+int(rest[1])]
		rest = rest[2+int(rest[1]):]
		for len(n) > 0 && n[0] == 0 { // DER's sign byte
			n = n[1:]
		}
		if len(n) > size {
			return nil, false
		}
		copy(out[(i+1)*size-len(n):(i+1)*size], n)
	}
	return out, len(rest) == 0
}
