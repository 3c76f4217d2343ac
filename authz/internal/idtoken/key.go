package idtoken

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/agentos-authz/agentos-authz/internal/boundedfile"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// MinRSABits is the smallest RSA key accepted: RFC 7518 §3.3 requires 2048
// bits for RS256.
const MinRSABits = 2048

// generate is the advice every key error ends with: how to make a key this
// package accepts.
const generate = "generate one with `agentos-authz keygen --alg RS256 --out PREFIX` (RS256, AgentOS's default algorithm; ES256 and EdDSA work too) and point upstream.signing_key_file at PREFIX.key.pem"

// The classes of key file errors, for errors.Is. Each error's text says
// what the file holds and what to write instead.
var (
	// ErrNotPrivateKey: the file holds something other than a private key
	// (a public key, a certificate, an HMAC secret, a JWK, an encrypted or
	// OpenSSH key, nothing).
	ErrNotPrivateKey = errors.New("not a PEM private key")
	// ErrUnsupportedKey: a private key that cannot sign identity tokens
	// (RSA under 2048 bits, an EC curve other than P-256, X25519, …).
	ErrUnsupportedKey = errors.New("unsupported signing key")
	// ErrMalformedKey: a private key block that does not parse, or a file
	// with more in it than one private key.
	ErrMalformedKey = errors.New("malformed key file")
)

// keyError is a key file error: class for errors.Is, msg for people.
type keyError struct {
	class error
	msg   string
}

func (e *keyError) Error() string { return e.msg }
func (e *keyError) Unwrap() error { return e.class }

func keyErr(class error, format string, args ...any) error {
	return &keyError{class: class, msg: fmt.Sprintf(format, args...)}
}

// Key is a parsed signing key: the private key, the algorithm it signs and
// its kid. A Key is immutable.
type Key struct {
	priv crypto.Signer
	alg  jwa.SignatureAlgorithm
	kid  string
	// pub is the public JWK with kid, alg and use set.
	pub jwk.Key
}

// Alg is the JWS algorithm the key signs: RS256, ES256 or EdDSA.
func (k *Key) Alg() string { return string(k.alg) }

// KeyID is the key's RFC 7638 thumbprint (SHA-256, base64url without
// padding): the kid of its tokens and of its entry in the JWK Set.
func (k *Key) KeyID() string { return k.kid }

// maxKeyFileBytes bounds upstream.signing_key_file: a PEM private key is a
// few KiB.
const maxKeyFileBytes = 1 << 20

// LoadKey reads a signing key from the PEM private key file at path (see
// ParseKey). Errors name the path, never the file's content.
func LoadKey(path string) (*Key, error) {
	data, err := boundedfile.Read(path, maxKeyFileBytes)
	if err != nil {
		return nil, err // *fs.PathError names the path
	}
	k, err := ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// ParseKey reads a signing key from a PEM private key: PKCS#8 ("PRIVATE
// KEY"), PKCS#1 ("RSA PRIVATE KEY") or SEC1 ("EC PRIVATE KEY", after an
// optional "EC PARAMETERS" block as `openssl ecparam -genkey` writes).
// An RSA key of at least MinRSABits signs RS256, a P-256 key ES256, an
// Ed25519 key EdDSA. Anything else is an error (ErrNotPrivateKey,
// ErrUnsupportedKey or ErrMalformedKey) saying what data holds and what to
// write instead; no error quotes data.
func ParseKey(data []byte) (*Key, error) {
	block, err := privateBlock(data)
	if err != nil {
		return nil, err
	}
	raw, err := parsePrivate(block)
	if err != nil {
		return nil, err
	}
	priv, alg, err := signingAlg(raw)
	if err != nil {
		return nil, err
	}
	return newKey(priv, alg)
}

// privateBlock finds the one private key block of data, or says what data
// holds instead.
func privateBlock(data []byte) (*pem.Block, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, keyErr(ErrNotPrivateKey, "the file is empty, want a PEM private key: %s", generate)
	}
	var key *pem.Block
	rest := data
	for {
		block, next := pem.Decode(rest)
		if block == nil {
			break
		}
		rest = next
		switch block.Type {
		case "EC PARAMETERS":
			// openssl ecparam -genkey writes the curve before the key;
			// the key itself names its curve again.
			continue
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			if _, encrypted := block.Headers["DEK-Info"]; encrypted {
				return nil, keyErr(ErrNotPrivateKey, "the file holds a passphrase-encrypted %s; the service cannot prompt for a passphrase: write it unencrypted (`openssl pkey -in FILE -out PLAIN.pem`) and keep that file private, or %s", block.Type, generate)
			}
			if key != nil {
				return nil, keyErr(ErrMalformedKey, "the file holds more than one private key; it must hold exactly the one that signs")
			}
			key = block
			continue
		}
		if key != nil {
			return nil, keyErr(ErrMalformedKey, "the file holds a %s block after the private key; it must hold only the private key", block.Type)
		}
		return nil, notPrivate(block.Type)
	}
	if key == nil {
		return nil, notPEM(trimmed)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, keyErr(ErrMalformedKey, "the file has data after the private key that is not PEM; it must hold only the private key")
	}
	return key, nil
}

// notPrivate explains a PEM block that is not a private key.
func notPrivate(typ string) error {
	switch typ {
	case "PUBLIC KEY", "RSA PUBLIC KEY":
		return keyErr(ErrNotPrivateKey, "the file holds a public key (%s), but signing needs the private key: point upstream.signing_key_file at the private half (keygen's PREFIX.key.pem), or %s", typ, generate)
	case "CERTIFICATE", "TRUSTED CERTIFICATE":
		return keyErr(ErrNotPrivateKey, "the file holds a certificate, but signing needs the private key: point upstream.signing_key_file at the certificate's private key file, or %s", generate)
	case "ENCRYPTED PRIVATE KEY":
		return keyErr(ErrNotPrivateKey, "the file holds a passphrase-encrypted private key; the service cannot prompt for a passphrase: write it unencrypted (`openssl pkey -in FILE -out PLAIN.pem`) and keep that file private, or %s", generate)
	case "OPENSSH PRIVATE KEY":
		return keyErr(ErrNotPrivateKey, "the file holds an OpenSSH private key; write it as PKCS#8 (`ssh-keygen -p -m PKCS8 -f FILE` for RSA and ECDSA keys), or %s", generate)
	}
	return keyErr(ErrNotPrivateKey, "the file holds a %q PEM block, want a private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY): %s", typ, generate)
}

// notPEM explains a file without any PEM block.
func notPEM(trimmed []byte) error {
	switch {
	case trimmed[0] == '{':
		return keyErr(ErrNotPrivateKey, "the file holds JSON (a JWK or JWK Set?), want a PEM private key: %s", generate)
	case bytes.HasPrefix(trimmed, []byte("ssh-")) || bytes.HasPrefix(trimmed, []byte("ecdsa-sha2-")):
		return keyErr(ErrNotPrivateKey, "the file holds an SSH public key, want a PEM private key: %s", generate)
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		return keyErr(ErrMalformedKey, "the file starts a PEM block that does not decode (a truncated or re-wrapped file?): write the whole private key, or %s", generate)
	}
	return keyErr(ErrNotPrivateKey, "the file holds no PEM block (an HMAC secret?); identity tokens are signed with a private key so that AgentOS verifies them with the public half only: %s", generate)
}

// parsePrivate decodes a private key block. Labels are often wrong (PKCS#1
// content under "PRIVATE KEY"), so the block's own format is tried first,
// then the other two.
func parsePrivate(block *pem.Block) (any, error) {
	parsers := map[string]func([]byte) (any, error){
		"PRIVATE KEY":     x509.ParsePKCS8PrivateKey,
		"RSA PRIVATE KEY": func(b []byte) (any, error) { return x509.ParsePKCS1PrivateKey(b) },
		"EC PRIVATE KEY":  func(b []byte) (any, error) { return x509.ParseECPrivateKey(b) },
	}
	first, err := parsers[block.Type](block.Bytes)
	if err == nil {
		return first, nil
	}
	for typ, parse := range parsers {
		if typ == block.Type {
			continue
		}
		if k, err2 := parse(block.Bytes); err2 == nil {
			return k, nil
		}
	}
	// x509's errors describe the structure (and for RSA the key size),
	// never the key's bytes.
	return nil, keyErr(ErrMalformedKey, "the %s block does not parse (%v): write an unencrypted PKCS#8, PKCS#1 or SEC1 private key (RSA of 2048 bits or more, EC P-256 or Ed25519), or %s", block.Type, err, generate)
}

// signingAlg picks the algorithm a parsed private key signs, or says why it
// cannot sign identity tokens.
func signingAlg(raw any) (crypto.Signer, jwa.SignatureAlgorithm, error) {
	switch k := raw.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < MinRSABits {
			return nil, "", keyErr(ErrUnsupportedKey, "the file holds a %d-bit RSA key; RS256 needs at least %d bits: %s", bits, MinRSABits, generate)
		}
		return k, jwa.RS256, nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, "", keyErr(ErrUnsupportedKey, "the file holds an EC key on %s; identity tokens are signed with ES256, which needs P-256 (`agentos-authz keygen --alg ES256`), or better %s", k.Curve.Params().Name, generate)
		}
		return k, jwa.ES256, nil
	case ed25519.PrivateKey:
		return k, jwa.EdDSA, nil
	case *ecdh.PrivateKey:
		return nil, "", keyErr(ErrUnsupportedKey, "the file holds an %v key, which agrees keys but cannot sign; for EdDSA use an Ed25519 key (`agentos-authz keygen --alg EdDSA`), or %s", k.Curve(), generate)
	}
	return nil, "", keyErr(ErrUnsupportedKey, "the file holds a %T private key, which cannot sign identity tokens: %s", raw, generate)
}

// newKey computes the public JWK and its thumbprint.
func newKey(priv crypto.Signer, alg jwa.SignatureAlgorithm) (*Key, error) {
	pub, err := jwk.FromRaw(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("public JWK: %w", err)
	}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("JWK thumbprint: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(tp)
	for name, v := range map[string]any{jwk.KeyIDKey: kid, jwk.AlgorithmKey: alg, jwk.KeyUsageKey: jwk.ForSignature} {
		if err := pub.Set(name, v); err != nil {
			return nil, fmt.Errorf("public JWK %s: %w", name, err)
		}
	}
	return &Key{priv: priv, alg: alg, kid: kid, pub: pub}, nil
}
