package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/agentos-authz/agentos-authz/internal/boundedfile"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// This file owns the verification key material: the signature algorithms we
// accept, the parsing of jwt.verification_keys and JWKS documents into
// verifyKeys, and the one jws.KeyProvider (keyRing) that picks the keys for
// a token. It never fetches anything: a remote JWKS is a jwksSource someone
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

// KeyFamily is the kind of key an algorithm signs with.
type KeyFamily uint8

// The key families.
const (
	FamilyHMAC KeyFamily = iota + 1
	FamilyRSA
	FamilyEC
	FamilyEd25519
)

// Algorithm is a signature algorithm as a signing tool needs it: its JOSE
// name, its key family and, for ECDSA, its curve.
type Algorithm struct {
	Name   jwa.SignatureAlgorithm
	Family KeyFamily
	Curve  elliptic.Curve // FamilyEC only
}

// LookupAlgorithm resolves a JOSE "alg" name (case-sensitive, as
// parseAlg) to the algorithm this package verifies; ok is false for
// "none" and unknown names.
func LookupAlgorithm(name string) (Algorithm, bool) {
	a, ok := parseAlg(name)
	if !ok {
		return Algorithm{}, false
	}
	out := Algorithm{Name: a.jwa()}
	switch a {
	case algHS256, algHS384, algHS512:
		out.Family = FamilyHMAC
	case algRS256, algRS384, algRS512, algPS256, algPS384, algPS512:
		out.Family = FamilyRSA
	case algES256:
		out.Family, out.Curve = FamilyEC, elliptic.P256()
	case algES384:
		out.Family, out.Curve = FamilyEC, elliptic.P384()
	case algES512:
		out.Family, out.Curve = FamilyEC, elliptic.P521()
	case algEdDSA:
		out.Family = FamilyEd25519
	}
	return out, true
}

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

// parseVerificationKey reads one jwt.verification_keys entry
// (docs/CONTRACT.md §3, §4): PEM (a public key or certificate) for the
// asymmetric algorithms, JWK or JWK Set JSON, or else an HMAC secret, taken
// byte for byte (compile then checks it with checkSecret). A PEM that does
// not parse is an error, never an HMAC secret: that is what keeps an RSA
// public key from ever becoming the secret of an HS256 forgery. A private
// key is refused: only public halves belong among verification keys, and a
// private key there is a secret leaked into a configuration file. Errors
// never quote the key.
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
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return nil, fmt.Errorf("is a private key (PEM %s): only public keys or certificates belong here; "+
				"give its public half (openssl pkey -in KEY -pubout) and keep the private key out of the configuration", block.Type)
		}
		// jwk.ParseKey(pem, jwk.WithPEM(true)) in two steps, to tell a
		// block that does not parse from a key type we cannot use.
		raw, _, err := jwk.DecodePEM([]byte(t))
		if err != nil {
			return nil, fmt.Errorf("is a PEM %s block that does not parse as a public key or certificate", block.Type)
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
			if isPrivateJWK(key) {
				return nil, fmt.Errorf("key %d is a private key (JWK with private parameters): give the public JWK only", i)
			}
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

// isPrivateJWK reports an asymmetric private JWK (an "oct" key is an HMAC
// secret, private by nature).
func isPrivateJWK(key jwk.Key) bool {
	switch key.(type) {
	case jwk.RSAPrivateKey, jwk.ECDSAPrivateKey, jwk.OKPPrivateKey:
		return true
	}
	return false
}

// isSecret reports whether keys is one HMAC secret (the fallback of
// parseVerificationKey, not an "oct" JWK).
func isSecret(keys []verifyKey) bool {
	return len(keys) == 1 && keys[0].kid == "" && keys[0].algs == 1<<algHS256|1<<algHS384|1<<algHS512
}

// hmacMinSecret is the shortest HMAC secret RFC 7518 §3.2 allows for the
// longest HMAC algorithm of s: the size of its hash (0 without HS*).
func (s algSet) hmacMinSecret() int {
	switch {
	case s.has(algHS512):
		return 64
	case s.has(algHS384):
		return 48
	case s.has(algHS256):
		return 32
	}
	return 0
}

// checkSecret refuses an HMAC secret that would break every token or let
// anyone mint them (docs/CONTRACT.md §4): one with leading or trailing white
// space (a newline from echo into a file, a YAML "|" block: it passes
// validation, then no token verifies), one that is really key material (an
// SSH public key, base64 DER of a public key, a path to a file — anyone
// holding that public text could sign admin tokens with it), and one shorter
// than minLen bytes unless allowShort. fromFile words the white-space message
// for a key file.
func checkSecret(secret []byte, minLen int, allowShort, fromFile bool) error {
	s := string(secret)
	if t := strings.TrimSpace(s); t != s {
		if fromFile {
			return errors.New("the secret file has leading or trailing white space (a trailing newline?): HMAC secrets are used byte for byte; " +
				"write the file without it (printf '%s' \"$SECRET\" > FILE)")
		}
		return errors.New("the HMAC secret has leading or trailing white space (a newline from echo or a YAML | block?): " +
			"secrets are used byte for byte, so no token would verify; remove it (YAML: use |- or a quoted string)")
	}
	switch {
	case strings.HasPrefix(s, "ssh-") || strings.HasPrefix(s, "ecdsa-sha2-"):
		return errors.New("is an SSH public key, not an HMAC secret: anyone holding the public key could sign tokens with it; " +
			"give the key as PEM (ssh-keygen -e -m PKCS8 -f KEY.pub) and use an RS*/ES*/EdDSA algorithm")
	case isBase64PublicKey(s):
		return errors.New("is a base64 DER public key, not an HMAC secret: anyone holding the public key could sign tokens with it; " +
			"give it as PEM (-----BEGIN PUBLIC KEY-----) and use an RS*/ES*/EdDSA algorithm")
	case looksLikeFile(s):
		return errors.New("is the path of an existing file, not an HMAC secret: the path itself would be the secret; " +
			"list the file under jwt.verification_key_files instead")
	}
	if minLen > 0 && len(secret) < minLen && !allowShort {
		return fmt.Errorf("the HMAC secret is %d bytes, shorter than the %d RFC 7518 §3.2 requires for the longest HMAC algorithm configured; "+
			"use a random secret of at least %d bytes (openssl rand -base64 %d), or set jwt.allow_short_hmac_secrets: true while the issuer cannot change it",
			len(secret), minLen, minLen, minLen)
	}
	return nil
}

// isBase64PublicKey reports whether s is base64 (standard or URL, padded or
// not) of a DER SubjectPublicKeyInfo or certificate.
func isBase64PublicKey(s string) bool {
	if len(s) < 40 {
		return false
	}
	for _, enc := range [...]*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		der, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if _, err := x509.ParsePKIXPublicKey(der); err == nil {
			return true
		}
		if _, err := x509.ParseCertificate(der); err == nil {
			return true
		}
	}
	return false
}

// looksLikeFile reports whether s names an existing file: a secret that is
// a path was meant to be read from that file.
func looksLikeFile(s string) bool {
	if len(s) > 4096 || !strings.ContainsAny(s, "/.") {
		return false
	}
	fi, err := os.Stat(s)
	return err == nil && fi.Mode().IsRegular()
}

// readKeyFile reads one jwt.verification_key_files entry: a PEM key or
// certificate or a JWK (as parseVerificationKey reads them), else an HMAC
// secret used byte for byte after checkSecret.
func readKeyFile(path string, hmacMin int, allowShort bool, files io.Writer) ([]verifyKey, error) {
	b, err := boundedfile.Read(path, maxKeyFileBytes)
	if errors.Is(err, boundedfile.ErrTooLarge) {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a key", path, maxKeyFileBytes)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	digestFile(files, path, b)
	keys, err := parseVerificationKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s %w", path, err)
	}
	if isSecret(keys) {
		if err := checkSecret(b, hmacMin, allowShort, true); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return keys, nil
}

// maxKeyFileBytes bounds a key file (a certificate chain fits).
const maxKeyFileBytes = 1 << 20

// keySet is an immutable JWKS indexed for verification: keys by kid, and the
// keys without a kid. Keys for encryption (use: enc), keys whose own alg is
// not a supported signature algorithm, and key types that fit no algorithm
// are left out. Safe for concurrent use.
type keySet struct {
	byKID   map[string][]verifyKey
	kidless []verifyKey
	n       int
	skipped int
}

// newKeySet indexes set. It fails when no key of set is usable for
// verification, naming why the first unusable key was left out.
func newKeySet(set jwk.Set) (*keySet, error) {
	ks := &keySet{byKID: make(map[string][]verifyKey)}
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

// parseJWKS parses a JWKS document (or a single JWK) into a keySet.
func parseJWKS(data []byte) (*keySet, error) {
	set, err := jwk.Parse(data)
	if err != nil {
		return nil, errors.New("is not a JWK Set (JSON with a \"keys\" list)")
	}
	return newKeySet(set)
}

// maxJWKSBytes bounds a JWKS document; real ones are a few KiB.
const maxJWKSBytes = 1 << 20

// digestFile writes one file read into files (Compiled.Digest).
func digestFile(files io.Writer, path string, b []byte) {
	fmt.Fprintf(files, "file %q %d\n", path, len(b))
	_, _ = files.Write(b)
}

// loadJWKSFile reads and parses the JWKS file at path; its bytes go to
// files.
func loadJWKSFile(path string, files io.Writer) (*keySet, error) {
	data, err := boundedfile.Read(path, maxJWKSBytes)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("%q does not exist", path)
	case errors.Is(err, boundedfile.ErrTooLarge):
		return nil, fmt.Errorf("%q is larger than 1 MiB", path)
	case err != nil:
		return nil, fmt.Errorf("%q cannot be read: %w", path, err)
	}
	digestFile(files, path, data)
	ks, err := parseJWKS(data)
	if err != nil {
		return nil, fmt.Errorf("%q %w", path, err)
	}
	return ks, nil
}

// Len is the number of usable keys.
func (s *keySet) Len() int { return s.n }

// Skipped is the number of keys of the document left out as unusable.
func (s *keySet) Skipped() int { return s.skipped }

// fits reports whether some key of s may verify a.
func (s *keySet) fits(a sigAlg) bool {
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
