package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/internal/boundedfile"
)

// rsaBits is the size of generated RSA keys.
const rsaBits = 2048

// generateKey makes a fresh private key for an asymmetric algorithm.
func generateKey(spec authz.SigningAlgorithm) (crypto.Signer, error) {
	switch spec.Family {
	case authz.KeyRSA:
		return rsa.GenerateKey(rand.Reader, rsaBits)
	case authz.KeyEC:
		return ecdsa.GenerateKey(spec.Curve, rand.Reader)
	case authz.KeyEd25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("%s uses a shared secret, not a key pair", spec.Name)
}

// encodeKeyPair renders a private key as PKCS#8 PEM and its public key as
// SPKI PEM (what verification_keys and JWT_VERIFICATION_KEY accept).
func encodeKeyPair(k crypto.Signer) (privPEM, pubPEM []byte, err error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, fmt.Errorf("encode private key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), nil
}

// parsePrivateKey reads a PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
// Errors never quote the file's content.
func parsePrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found (want a PEM private key)")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block is %q, want a private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", block.Type, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
	return signer, nil
}

// signingKey reads the key file for spec: the HMAC secret (surrounding
// whitespace trimmed) for HS*, else a private key of the algorithm's type.
func signingKey(spec authz.SigningAlgorithm, path string) (any, error) {
	data, err := boundedfile.Read(path, maxFlagFileBytes)
	if err != nil {
		return nil, err
	}
	if spec.Family == authz.KeyHMAC {
		secret := bytes.TrimSpace(data)
		if len(secret) == 0 {
			return nil, fmt.Errorf("%s: the secret file is empty", path)
		}
		return secret, nil
	}
	k, err := parsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := keyFits(spec, k); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// keyFits reports whether k can sign with spec's algorithm: the family and,
// for ECDSA, the curve must match (ES256 is P-256 only).
func keyFits(spec authz.SigningAlgorithm, k crypto.Signer) error {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		if spec.Family == authz.KeyRSA {
			return nil
		}
	case *ecdsa.PrivateKey:
		if spec.Family == authz.KeyEC {
			if k.Curve != spec.Curve {
				return fmt.Errorf("%s needs a %s key, this one is %s", spec.Name, spec.Curve.Params().Name, k.Curve.Params().Name)
			}
			return nil
		}
	case ed25519.PrivateKey:
		if spec.Family == authz.KeyEd25519 {
			return nil
		}
	}
	return fmt.Errorf("a %s key cannot sign %s", keyTypeName(k), spec.Name)
}

func keyTypeName(k crypto.Signer) string {
	switch k.(type) {
	case *rsa.PrivateKey:
		return "RSA"
	case *ecdsa.PrivateKey:
		return "ECDSA"
	case ed25519.PrivateKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", k)
}

// tokenSpec is what a minted token says. Zero fields are left out; TTL 0
// means no exp claim, a negative TTL an already expired token.
type tokenSpec struct {
	Subject   string
	Audience  []string
	Scopes    []string
	Issuer    string
	SessionID string
	KeyID     string
	TTL       time.Duration
	Now       time.Time
	// Claims are set last, over the claims above (token --claim).
	Claims map[string]any
}

// claimError is a --claim value the claim cannot take (a registered claim of
// another type, e.g. exp=soon): a usage error.
type claimError struct {
	name string
	err  error
}

func (e *claimError) Error() string { return fmt.Sprintf("--claim %s: %v", e.name, e.err) }

// mintToken signs a JWT with jwx. The scopes go in the contract's default
// "scopes" claim as a list of strings.
func mintToken(spec authz.SigningAlgorithm, key any, ts tokenSpec) (string, error) {
	t := jwt.New()
	now := ts.Now.Truncate(time.Second)
	set := func(name string, v any) error {
		if err := t.Set(name, v); err != nil {
			return fmt.Errorf("claim %s: %w", name, err)
		}
		return nil
	}
	claims := []struct {
		name string
		v    any
		skip bool
	}{
		{jwt.SubjectKey, ts.Subject, ts.Subject == ""},
		{jwt.AudienceKey, ts.Audience, len(ts.Audience) == 0},
		{jwt.IssuerKey, ts.Issuer, ts.Issuer == ""},
		{jwt.IssuedAtKey, now, false},
		{jwt.ExpirationKey, now.Add(ts.TTL), ts.TTL == 0},
		{"scopes", ts.Scopes, ts.Scopes == nil},
		{"session_id", ts.SessionID, ts.SessionID == ""},
	}
	for _, c := range claims {
		if c.skip {
			continue
		}
		if err := set(c.name, c.v); err != nil {
			return "", err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(ts.Claims)) {
		if err := t.Set(name, ts.Claims[name]); err != nil {
			return "", &claimError{name: name, err: err}
		}
	}
	hdr := jws.NewHeaders()
	if ts.KeyID != "" {
		if err := hdr.Set(jws.KeyIDKey, ts.KeyID); err != nil {
			return "", fmt.Errorf("kid: %w", err)
		}
	}
	signed, err := jwt.Sign(t, jwt.WithKey(spec.Name, key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("sign %s token: %w", spec.Name, err)
	}
	return string(signed), nil
}

// splitList splits a comma-separated flag value, dropping empty items;
// nil when there is none.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
