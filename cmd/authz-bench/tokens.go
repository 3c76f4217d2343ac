package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// signer signs tokens with one algorithm and key. key is []byte for HS256
// and *rsa.PrivateKey for RS256.
type signer struct {
	alg jwa.SignatureAlgorithm
	key any
}

// signingKeys are the keys read from --key files: at most one HMAC secret
// and one RSA private key.
type signingKeys struct {
	hmac []byte
	rsa  *rsa.PrivateKey
}

// readSigningKeys reads each file as a PEM RSA private key (PKCS #8 or
// PKCS #1) when it holds a PEM block, else as an HMAC secret: the file's
// bytes with surrounding white space removed, as the same string would
// appear in the server's jwt.verification_keys. Errors name the file,
// never its content.
func readSigningKeys(paths []string) (signingKeys, error) {
	var ks signingKeys
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return signingKeys{}, fmt.Errorf("--key %s: %w", p, err)
		}
		if !bytes.Contains(b, []byte("-----BEGIN")) {
			secret := bytes.TrimSpace(b)
			if len(secret) == 0 {
				return signingKeys{}, fmt.Errorf("--key %s: empty HMAC secret", p)
			}
			if ks.hmac != nil {
				return signingKeys{}, fmt.Errorf("--key %s: a second HMAC secret; give one", p)
			}
			ks.hmac = secret
			continue
		}
		k, err := parseRSAPrivateKey(b)
		if err != nil {
			return signingKeys{}, fmt.Errorf("--key %s: %w", p, err)
		}
		if ks.rsa != nil {
			return signingKeys{}, fmt.Errorf("--key %s: a second RSA key; give one", p)
		}
		ks.rsa = k
	}
	return ks, nil
}

func parseRSAPrivateKey(b []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PKCS #1 RSA private key: %w", err)
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PKCS #8 private key: %w", err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("a %T, want an RSA private key (RS256)", k)
		}
		return rk, nil
	default:
		return nil, fmt.Errorf("PEM block %q, want \"PRIVATE KEY\" or \"RSA PRIVATE KEY\"", block.Type)
	}
}

// signersFor returns the signers for --alg (HS256, RS256 or mixed: half
// of the tokens each) from the keys given.
func signersFor(alg string, ks signingKeys) ([]signer, error) {
	hs := func() (signer, error) {
		if ks.hmac == nil {
			return signer{}, errors.New("HS256 needs --key with an HMAC secret file")
		}
		return signer{alg: jwa.HS256, key: ks.hmac}, nil
	}
	rs := func() (signer, error) {
		if ks.rsa == nil {
			return signer{}, errors.New("RS256 needs --key with a PEM RSA private key")
		}
		return signer{alg: jwa.RS256, key: ks.rsa}, nil
	}
	var out []signer
	var makers []func() (signer, error)
	switch alg {
	case "HS256":
		makers = append(makers, hs)
	case "RS256":
		makers = append(makers, rs)
	case "mixed":
		makers = append(makers, hs, rs)
	default:
		return nil, fmt.Errorf("--alg %q: want HS256, RS256 or mixed", alg)
	}
	for _, m := range makers {
		s, err := m()
		if err != nil {
			return nil, fmt.Errorf("--alg %s: %w", alg, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// claimSpec holds the claims every minted token shares.
type claimSpec struct {
	Issuer   string        // "" = no iss
	Audience string        // "" = no aud
	TTL      time.Duration // exp = iat + TTL
}

// mintToken signs one token for the i-th caller of a pool. Each token is
// distinct (a random jti), so a server's token cache sees it as new.
func mintToken(s signer, i int, scopes []string, spec claimSpec, now time.Time) (string, error) {
	var jti [12]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("jti: %w", err)
	}
	b := jwt.NewBuilder().
		Subject("bench-user-"+strconv.Itoa(i)).
		IssuedAt(now).
		Expiration(now.Add(spec.TTL)).
		JwtID(hex.EncodeToString(jti[:])).
		Claim("session_id", "bench-session-"+strconv.Itoa(i)).
		Claim("scopes", scopes)
	if spec.Issuer != "" {
		b = b.Issuer(spec.Issuer)
	}
	if spec.Audience != "" {
		b = b.Audience([]string{spec.Audience})
	}
	tok, err := b.Build()
	if err != nil {
		return "", fmt.Errorf("token claims: %w", err)
	}
	if spec.Audience != "" {
		// A single audience as a plain string, as most issuers write it.
		tok.Options().Enable(jwt.FlattenAudience)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(s.alg, s.key))
	if err != nil {
		return "", fmt.Errorf("sign %s token: %w", s.alg, err)
	}
	return string(signed), nil
}
