package conformance

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// Keys is the fixed key material of the conformance suite, by file name:
// NAME.key.pem (PKCS#8 private), NAME.pub.pem (SPKI public), NAME.crt.pem
// (certificate) and NAME.secret (HMAC secret, surrounding whitespace
// trimmed).
type Keys struct {
	files map[string][]byte
}

// LoadKeys reads every file of dir.
func LoadKeys(dir string) (*Keys, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		files[e.Name()] = b
	}
	return NewKeys(files), nil
}

// NewKeys makes key material from file contents by file name, for tests
// that generate their own keys.
func NewKeys(files map[string][]byte) *Keys {
	return &Keys{files: files}
}

func (k *Keys) file(name string) ([]byte, error) {
	b, ok := k.files[name]
	if !ok {
		return nil, fmt.Errorf("key file %s not found", name)
	}
	return b, nil
}

// PublicPEM is the text of NAME.pub.pem.
func (k *Keys) PublicPEM(name string) (string, error) {
	b, err := k.file(name + ".pub.pem")
	return string(b), err
}

// CertPEM is the text of NAME.crt.pem.
func (k *Keys) CertPEM(name string) (string, error) {
	b, err := k.file(name + ".crt.pem")
	return string(b), err
}

// Secret is the HMAC secret of NAME.secret, surrounding whitespace trimmed.
func (k *Keys) Secret(name string) (string, error) {
	b, err := k.file(name + ".secret")
	return strings.TrimSpace(string(b)), err
}

// Private parses NAME.key.pem (PKCS#8).
func (k *Keys) Private(name string) (crypto.Signer, error) {
	b, err := k.file(name + ".key.pem")
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s.key.pem: no PEM block", name)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s.key.pem: %w", name, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s.key.pem: %T is not a signing key", name, key)
	}
	return signer, nil
}

// Substituter replaces the README's placeholders in configurations and
// environments, writing the files some of them stand for into Dir.
//
// Placeholders are whole JSON string values: @pub:NAME, @cert:NAME,
// @secret:NAME, @jwks:A,B=kid, @jwks-nokid:A, @file:invalid-json and
// @file:missing. Any other string is left as it is.
type Substituter struct {
	Keys *Keys
	Dir  string
	// Accounts fill the @sqlite:NAME databases, their times relative to
	// the substitution.
	Accounts []ServiceAccount

	sqlite map[string]string // NAME -> db_url already written

	n int // files written so far, for unique names
}

// Value substitutes one string.
func (s *Substituter) Value(v string) (string, error) {
	kind, arg, ok := splitPlaceholder(v)
	if !ok {
		return v, nil
	}
	switch kind {
	case "pub":
		return s.Keys.PublicPEM(arg)
	case "cert":
		return s.Keys.CertPEM(arg)
	case "secret":
		return s.Keys.Secret(arg)
	case "jwks":
		return s.writeJWKS(arg, true)
	case "jwks-nokid":
		return s.writeJWKS(arg, false)
	case "sqlite":
		return s.writeSQLite(arg)
	case "file":
		switch arg {
		case "invalid-json":
			return s.write("invalid.json", []byte("this is {not JSON\n"))
		case "missing":
			s.n++
			return filepath.Join(s.Dir, fmt.Sprintf("missing-%d.json", s.n)), nil
		}
		return "", fmt.Errorf("placeholder %q: unknown @file", v)
	}
	return v, nil
}

func splitPlaceholder(v string) (kind, arg string, ok bool) {
	if !strings.HasPrefix(v, "@") {
		return "", "", false
	}
	kind, arg, ok = strings.Cut(v[1:], ":")
	switch kind {
	case "pub", "cert", "secret", "jwks", "jwks-nokid", "file", "sqlite":
		return kind, arg, ok && arg != ""
	}
	return "", "", false
}

// Env substitutes every value of env.
func (s *Substituter) Env(env map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(env))
	for k, v := range env {
		sv, err := s.Value(v)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", k, err)
		}
		out[k] = sv
	}
	return out, nil
}

// Config substitutes every string value (never a key) of a JSON document
// and returns it as indented JSON, which is also valid YAML, with the key
// order of the input kept: scope_mappings order matters (docs/CONTRACT.md §5).
func (s *Substituter) Config(raw json.RawMessage) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out bytes.Buffer
	if err := s.walk(dec, &out); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("config: trailing data after the JSON value")
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, out.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	indented.WriteByte('\n')
	return indented.Bytes(), nil
}

func (s *Substituter) walk(dec *json.Decoder, out *bytes.Buffer) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			out.WriteByte('{')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				kt, err := dec.Token()
				if err != nil {
					return fmt.Errorf("config: %w", err)
				}
				writeJSON(out, kt)
				out.WriteByte(':')
				if err := s.walk(dec, out); err != nil {
					return err
				}
			}
			out.WriteByte('}')
		case '[':
			out.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				if err := s.walk(dec, out); err != nil {
					return err
				}
			}
			out.WriteByte(']')
		}
		_, err := dec.Token() // the closing delimiter
		return err
	case string:
		v, err := s.Value(t)
		if err != nil {
			return err
		}
		writeJSON(out, v)
	case nil:
		out.WriteString("null")
	default: // bool, json.Number
		writeJSON(out, t)
	}
	return nil
}

func writeJSON(out *bytes.Buffer, v any) {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // strings, bools and json.Number always encode
	out.Truncate(out.Len() - 1)
}

func (s *Substituter) write(name string, b []byte) (string, error) {
	s.n++
	p := filepath.Join(s.Dir, fmt.Sprintf("%d-%s", s.n, name))
	if err := os.WriteFile(p, b, 0o600); err != nil {
		return "", err
	}
	return p, nil
}

// writeJWKS writes a JWKS of the public keys in spec ("A,B=kid,C=") and
// returns its path: kid = the key name, or what follows "=", or none for
// "NAME=" or when withKid is false; every key has its alg and use: sig.
func (s *Substituter) writeJWKS(spec string, withKid bool) (string, error) {
	b, err := JWKS(s.Keys, spec, withKid)
	if err != nil {
		return "", err
	}
	return s.write("jwks.json", b)
}

// JWKS returns the JSON of a key set built from spec (see writeJWKS).
func JWKS(keys *Keys, spec string, withKid bool) ([]byte, error) {
	set := jwk.NewSet()
	for item := range strings.SplitSeq(spec, ",") {
		name, kid, hasEq := strings.Cut(item, "=")
		if !hasEq {
			kid = name
		}
		if !withKid {
			kid = ""
		}
		pub, err := keys.PublicPEM(name)
		if err != nil {
			return nil, fmt.Errorf("@jwks %s: %w", spec, err)
		}
		key, err := jwk.ParseKey([]byte(pub), jwk.WithPEM(true))
		if err != nil {
			return nil, fmt.Errorf("@jwks %s: key %s: %w", spec, name, err)
		}
		alg, err := algorithmForKey(key)
		if err != nil {
			return nil, fmt.Errorf("@jwks %s: key %s: %w", spec, name, err)
		}
		if err := key.Set(jwk.AlgorithmKey, alg); err != nil {
			return nil, err
		}
		if err := key.Set(jwk.KeyUsageKey, jwk.ForSignature); err != nil {
			return nil, err
		}
		if kid != "" {
			if err := key.Set(jwk.KeyIDKey, kid); err != nil {
				return nil, err
			}
		}
		if err := set.AddKey(key); err != nil {
			return nil, err
		}
	}
	return json.MarshalIndent(set, "", "  ")
}

// algorithmForKey is the one algorithm a JWKS entry of this key announces.
func algorithmForKey(key jwk.Key) (jwa.SignatureAlgorithm, error) {
	var raw any
	if err := key.Raw(&raw); err != nil {
		return "", err
	}
	switch k := raw.(type) {
	case *rsa.PublicKey:
		return jwa.RS256, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return jwa.ES256, nil
		case elliptic.P384():
			return jwa.ES384, nil
		case elliptic.P521():
			return jwa.ES512, nil
		}
	case ed25519.PublicKey:
		return jwa.EdDSA, nil
	}
	return "", fmt.Errorf("no JWS algorithm for a %T", raw)
}

// writeSQLite creates the SQLite file of @sqlite:NAME once per Substituter:
// AgentOS's service-account table filled with s.Accounts. It returns the
// db_url.
func (s *Substituter) writeSQLite(name string) (string, error) {
	if u, ok := s.sqlite[name]; ok {
		return u, nil
	}
	if name == "" || strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("placeholder @sqlite:%s: want a plain name", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := WriteSQLiteAccounts(ctx, filepath.Join(s.Dir, "sqlite-"+name+".db"), s.Accounts, time.Now())
	if err != nil {
		return "", fmt.Errorf("placeholder @sqlite:%s: %w", name, err)
	}
	if s.sqlite == nil {
		s.sqlite = map[string]string{}
	}
	s.sqlite[name] = u
	return u, nil
}
