package conformance

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Minter mints the tokens of TokenSpecs with the suite's keys.
type Minter struct {
	Keys *Keys
	Now  func() time.Time // the sending time; time.Now when nil
}

var relativeTime = regexp.MustCompile(`^([+-])(\d+)([smhd])$`)

// Mint returns the compact JWS of spec (README "Token"):
//   - raw: that string, as is;
//   - alg "none" in any case: header.payload. unsigned;
//   - otherwise header and payload signed with the named key; tamper
//     applied afterwards.
func (m Minter) Mint(spec TokenSpec) (string, error) {
	if spec.Raw != nil {
		return *spec.Raw, nil
	}
	now := time.Now()
	if m.Now != nil {
		now = m.Now()
	}
	alg := spec.Alg
	if alg == "" {
		alg = "HS256"
	}
	unsigned := strings.EqualFold(alg, "none")

	header, err := m.header(alg, spec.Header)
	if err != nil {
		return "", err
	}
	var payload []byte
	var claims map[string]any
	if spec.PayloadRaw != nil {
		payload = []byte(*spec.PayloadRaw)
	} else {
		claims, err = resolveClaims(spec.Claims, now)
		if err != nil {
			return "", err
		}
		payload, err = marshalNoEscape(claims)
		if err != nil {
			return "", err
		}
	}

	enc := base64.RawURLEncoding
	var key any
	if !unsigned {
		if key, err = m.signingKey(alg, spec); err != nil {
			return "", err
		}
	}
	compact, err := Sign(alg, key, header, payload)
	if err != nil {
		return "", fmt.Errorf("key %q: %w", spec.Key, err)
	}
	cut := strings.LastIndexByte(compact, '.')
	signingInput, sig := compact[:cut], compact[cut+1:]

	if spec.Tamper != nil {
		if spec.Tamper.Claims != nil {
			if claims == nil {
				return "", fmt.Errorf("tamper.claims needs claims, not payload_raw")
			}
			extra, err := resolveClaims(spec.Tamper.Claims, now)
			if err != nil {
				return "", fmt.Errorf("tamper.claims: %w", err)
			}
			merged := maps.Clone(claims)
			maps.Copy(merged, extra)
			payload, err := marshalNoEscape(merged)
			if err != nil {
				return "", err
			}
			head, _, _ := strings.Cut(signingInput, ".")
			signingInput = head + "." + enc.EncodeToString(payload)
		}
		if spec.Tamper.Signature {
			if sig == "" {
				return "", fmt.Errorf("tamper.signature on an unsigned token")
			}
			sig = flipFirst(sig)
		}
	}
	return signingInput + "." + sig, nil
}

// Sign is the compact JWS of header and payload (the exact bytes given,
// base64url-encoded) signed under alg with key: a crypto.Signer for the
// asymmetric algorithms, the secret ([]byte or string) for HS*. alg "none"
// in any case gives the unsigned header.payload. (with no signature). It is
// the one signing step of every test token: Minter's, and internal/jwttest's.
func Sign(alg string, key any, header, payload []byte) (string, error) {
	enc := base64.RawURLEncoding
	signingInput := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	if strings.EqualFold(alg, "none") {
		return signingInput + ".", nil
	}
	signer, err := jws.NewSigner(jwa.SignatureAlgorithm(alg))
	if err != nil {
		return "", fmt.Errorf("token alg %q: %w", alg, err)
	}
	if s, ok := key.(string); ok {
		key = []byte(s)
	}
	raw, err := signer.Sign([]byte(signingInput), key)
	if err != nil {
		return "", fmt.Errorf("token alg %q: %w", alg, err)
	}
	return signingInput + "." + enc.EncodeToString(raw), nil
}

// header is the JOSE header: alg, typ JWT, then the spec's extra fields in
// name order; a null field removes it (alg included, for alg none tests).
func (m Minter) header(alg string, extra map[string]json.RawMessage) ([]byte, error) {
	fields := map[string]json.RawMessage{}
	order := []string{"alg", "typ"}
	fields["alg"], _ = json.Marshal(alg)
	fields["typ"] = json.RawMessage(`"JWT"`)
	names := slices.Sorted(maps.Keys(extra))
	for _, name := range names {
		v := extra[name]
		if string(bytes.TrimSpace(v)) == "null" {
			delete(fields, name)
			continue
		}
		if !json.Valid(v) {
			return nil, fmt.Errorf("token header %s: invalid JSON", name)
		}
		if _, known := fields[name]; !known && !slices.Contains(order, name) {
			order = append(order, name)
		}
		fields[name] = v
	}
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	for _, name := range order {
		v, ok := fields[name]
		if !ok {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		writeJSON(&b, name)
		b.WriteByte(':')
		if err := json.Compact(&b, v); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// signingKey resolves the spec's key for alg: an HMAC secret for HS* (the
// literal secret, pem:NAME's public PEM text, or NAME.secret), a private key
// otherwise.
func (m Minter) signingKey(alg string, spec TokenSpec) (any, error) {
	if strings.HasPrefix(alg, "HS") {
		if spec.Secret != nil {
			return []byte(*spec.Secret), nil
		}
		name := spec.Key
		if name == "" {
			name = "hs"
		}
		if pemName, ok := strings.CutPrefix(name, "pem:"); ok {
			text, err := m.Keys.PublicPEM(pemName)
			return []byte(text), err
		}
		secret, err := m.Keys.Secret(name)
		return []byte(secret), err
	}
	if spec.Secret != nil {
		return nil, fmt.Errorf("token alg %s: a literal secret needs an HS* algorithm", alg)
	}
	if spec.Key == "" {
		return nil, fmt.Errorf("token alg %s: no key named", alg)
	}
	return m.Keys.Private(spec.Key)
}

// resolveClaims decodes a claims object, turning "now", "+N" and "-N"
// (unit s m h d) in exp, nbf and iat into NumericDates relative to now.
// Other values, "tomorrow" included, stay as they are.
func resolveClaims(raw json.RawMessage, now time.Time) (map[string]any, error) {
	claims := map[string]any{}
	if raw == nil {
		return claims, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	if claims == nil {
		return nil, fmt.Errorf("claims: want an object, got null")
	}
	for _, name := range []string{"exp", "nbf", "iat"} {
		s, ok := claims[name].(string)
		if !ok {
			continue
		}
		if t, ok := RelativeTime(s, now); ok {
			claims[name] = t.Unix()
		}
	}
	return claims, nil
}

// RelativeTime reads "now", "+N" or "-N" with unit s, m, h or d.
func RelativeTime(s string, now time.Time) (time.Time, bool) {
	if s == "now" {
		return now, true
	}
	m := relativeTime.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(m[2], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[m[3]]
	d := time.Duration(n) * unit
	if m[1] == "-" {
		d = -d
	}
	return now.Add(d), true
}

func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// flipFirst changes the first character of a base64url string to another
// base64url character.
func flipFirst(s string) string {
	if s == "" {
		return s
	}
	c := byte('A')
	if s[0] == 'A' {
		c = 'B'
	}
	return string(c) + s[1:]
}
