package authz

import (
	"crypto/sha256"
	"crypto/subtle"
)

// keyMode says how the deprecated security key (docs/CONTRACT.md §7) takes part.
type keyMode uint8

const (
	keyOff       keyMode = iota // no security key
	keyOnly                     // OS_SECURITY_KEY alone: the only credential
	keyMigration                // beside a JWT source (security_key_migration)
)

// securityKey holds the digest of the deprecated static key, never the key
// text: comparing SHA-256 digests with subtle.ConstantTimeCompare takes the
// same time whatever the presented value, its length included.
type securityKey struct {
	mode   keyMode
	digest [sha256.Size]byte
}

func newSecurityKey(key string, jwtSource bool) securityKey {
	if key == "" {
		return securityKey{}
	}
	k := securityKey{mode: keyOnly, digest: sha256.Sum256([]byte(key))}
	if jwtSource {
		k.mode = keyMigration
	}
	return k
}

// matches reports in constant time whether presented is the key.
func (k *securityKey) matches(presented string) bool {
	d := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(d[:], k.digest[:]) == 1
}

// Security-key details (docs/CONTRACT.md §5 table, key mode).
const (
	detailKeyRequired = "Authorization header required"
	detailKeyInvalid  = "Invalid authentication token"
)

// AuthSecurityKey is the principal and x-agentos-auth value of a request
// authenticated with the deprecated security key.
const AuthSecurityKey = "security-key"
