package authz

import (
	"errors"

	"github.com/agentos-authz/agentos-authz/authz/internal/idtoken"
)

// This file exposes to cmd the one piece of the identity-token unit
// (package idtoken, docs/CONTRACT.md §9) a tool needs: the public JWK Set
// of signing keys, for "agentos-authz keygen --jwks", byte for byte the set
// the admin listener serves at /.well-known/jwks.json.

// UpstreamKey is a parsed upstream.signing_key_file: the private key that
// signs identity tokens for the upstream AgentOS.
type UpstreamKey struct {
	k *idtoken.Key
}

// ParseUpstreamKey reads an identity-token signing key from a PEM private
// key (PKCS#8, PKCS#1 RSA or SEC1 EC): RSA of 2048 bits or more signs
// RS256, P-256 ES256, Ed25519 EdDSA. Any other content is an error saying
// what it holds and what to write instead, never quoting it.
func ParseUpstreamKey(pemData []byte) (*UpstreamKey, error) {
	k, err := idtoken.ParseKey(pemData)
	if err != nil {
		return nil, err
	}
	return &UpstreamKey{k: k}, nil
}

// Alg is the algorithm the key signs: RS256, ES256 or EdDSA.
func (k *UpstreamKey) Alg() string { return k.k.Alg() }

// KeyID is the key's RFC 7638 thumbprint, the kid of its tokens.
func (k *UpstreamKey) KeyID() string { return k.k.KeyID() }

// UpstreamJWKS renders the public halves of keys, the newest first, as the
// JWK Set served at /.well-known/jwks.json (each key with kid, alg and
// "use": "sig"), for AgentOS's JWT_JWKS_FILE.
func UpstreamJWKS(keys ...*UpstreamKey) ([]byte, error) {
	ks := make([]*idtoken.Key, len(keys))
	for i, k := range keys {
		if k == nil {
			return nil, errors.New("JWK Set: nil key")
		}
		ks[i] = k.k
	}
	return idtoken.PublicJWKS(ks...)
}
