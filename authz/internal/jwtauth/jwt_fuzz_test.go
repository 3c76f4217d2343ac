package jwtauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentos-authz/agentos-authz/internal/jwttest"
)

// FuzzVerify: whatever the token string, Verify does not panic, answers
// one of the 401 reasons with an "Invalid token: " detail or a fixed
// contract message that quotes no part of the token, and only the
// unmodified valid seeds verify.
func FuzzVerify(f *testing.F) {
	k := jwttest.LoadKeys(f)
	v := jtVerifier(f, jtBaseConfig(k), Options{Audience: []string{"test-os"}})
	laxCfg := jtBaseConfig(k)
	laxCfg.Validate = jwttest.Ptr(false)
	lax := jtVerifier(f, laxCfg, Options{})

	// Valid seeds use deterministic signatures (not ES256): every fuzz
	// worker mints the same strings.
	valid := map[string]bool{}
	for _, tk := range []jwttest.Token{
		{Alg: "HS256", Key: k.HS, Claims: jwttest.Claims(nil)},                                  // valid
		{Alg: "RS256", Key: k.RS.Priv, Claims: jwttest.Claims(nil)},                             // valid
		{Alg: "EdDSA", Key: k.ED.Priv, Claims: jwttest.Claims(map[string]any{"scopes": "a b"})}, // valid
	} {
		raw := jwttest.Mint(f, tk)
		valid[raw] = true
		f.Add(raw)
	}
	for _, s := range []string{
		"", "garbage", "a.b", "a.b.c", "a.b.c.d", "@@@.###.$$$", // malformed
		"bm90LWpzb24.eyJzdWIiOiJ4In0.c2ln",                                                          // header not JSON
		jwttest.Mint(f, jwttest.Token{Alg: "none", Claims: jwttest.Claims(nil)}),                    // unsigned
		jwttest.Mint(f, jwttest.Token{Alg: "HS512", Key: k.HS, Claims: jwttest.Claims(nil)}),        // not allowed
		jwttest.Mint(f, jwttest.Token{Alg: "HS256", Key: k.RS.PubPEM, Claims: jwttest.Claims(nil)}), // alg confusion
		jwttest.Mint(f, jwttest.Token{Alg: "HS256", Key: k.HS, Payload: []byte(`{"exp":"x"}`)}),     // bad claims
		jwttest.Mint(f, jwttest.Token{Alg: "HS256", Key: k.HS, Payload: []byte(`{"exp":1e400}`)}),   // huge exp
		jwttest.Mint(f, jwttest.Token{Alg: "HS256", Key: k.HS, Claims: jwttest.Claims(map[string]any{"aud": []any{}})}),
		strings.Repeat("a", MaxTokenBytes+1),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, fail := v.Verify(t.Context(), raw)
		if fail == nil {
			if !valid[raw] {
				t.Fatalf("Verify(%q) = valid %+v", raw, id)
			}
			return
		}
		switch fail.Reason() {
		case ReasonInvalidToken:
			if !strings.HasPrefix(fail.Detail(), detailInvalidPrefix) {
				t.Fatalf("detail %q", fail.Detail())
			}
		case ReasonTokenExpired, ReasonInvalidAudience, ReasonInvalidSubject:
		default:
			t.Fatalf("reason %v", fail.Reason())
		}
		for part := range strings.SplitSeq(raw, ".") {
			if len(part) >= 8 && strings.Contains(fail.Detail(), part) {
				t.Fatalf("detail %q quotes the token", fail.Detail())
			}
		}
		lax.Verify(t.Context(), raw) // must not panic either
	})
}

// FuzzClaimsScan: scanClaims agrees with encoding/json — it accepts exactly
// the documents that are one JSON object, and finds the same members with
// the same raw values (the last of a repeated name).
func FuzzClaimsScan(f *testing.F) {
	for _, s := range []string{
		`{}`, ` {"a":1} `, `{"sub":"x","aud":["a","b"],"exp":1.5e9,"n":null,"t":true,"o":{"k":[1,{"z":"\u00e9"}]}}`,
		`{"a":1,"a":2}`, `{"a\u0062":"\"q\""}`, `[1]`, `null`, `{"a":1}x`, `{"a":01}`, `{"a":-}`, `{"a":1.}`,
		`{"a":"\x"}`, `{"a":"` + "\x01" + `"}`, `{"a" 1}`, `{,}`, `{"a":1,}`, strings.Repeat(`{"a":`, 70) + "1" + strings.Repeat("}", 70),
		`{"a":[1,2,]}`, `{"a":tru}`, `{"a":1e+}`, "{\"a\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		got, ok := scanClaims(nil, payload)
		var want map[string]json.RawMessage
		err := json.Unmarshal(payload, &want)
		refOK := err == nil && want != nil && depthOK(payload)
		if ok != refOK {
			t.Fatalf("scanClaims(%q) ok = %v, encoding/json ok = %v (%v)", payload, ok, refOK, err)
		}
		if !ok {
			return
		}
		names := map[string]bool{}
		for _, c := range got {
			names[string(c.name)] = true
		}
		if len(names) != len(want) {
			t.Fatalf("scanClaims(%q) names %v, want %d", payload, names, len(want))
		}
		for name, raw := range want {
			g, found := got.get(name)
			if !found || !bytes.Equal(g, raw) {
				t.Fatalf("scanClaims(%q)[%q] = %q, want %q", payload, name, g, raw)
			}
		}
	})
}

// depthOK reports whether payload nests at most maxJSONDepth levels below
// the top object (scanClaims' documented bound; encoding/json allows more).
func depthOK(payload []byte) bool {
	depth, inStr, esc := 0, false, false
	for _, c := range payload {
		switch {
		case inStr && esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case inStr && c == '"':
			inStr = false
		case inStr:
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
			if depth > maxJSONDepth+1 { // the top object, then maxJSONDepth levels
				return false
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return true
}

// FuzzCompactShape: compactShape accepts exactly three non-empty parts that
// strict unpadded base64url decodes and re-encodes to themselves.
func FuzzCompactShape(f *testing.F) {
	for _, s := range []string{
		"a.b.c", "eyJh.eyJi.c2ln", "eyJh.eyJi.", "eyJh..c2ln", "eyJh.eyJi.c2ln.x", "eyJh.eyJi.c2lo", "eyJh.eyJi.c2l=",
		"eyJh.eyJi.c2\nln", "QQ.QR.QQ", "QUE.QUF.QUE", "-_-_.AAAA.zzzz", "\x80AAA.AAAA.AAAA", "",
	} {
		f.Add(s)
	}
	strict := base64.RawURLEncoding.Strict()
	f.Fuzz(func(t *testing.T, raw string) {
		parts := strings.Split(raw, ".")
		want := len(parts) == 3
		for _, p := range parts {
			b, err := strict.DecodeString(p)
			if p == "" || err != nil || strict.EncodeToString(b) != p {
				want = false
			}
		}
		if got := compactShape(raw) == ""; got != want {
			t.Fatalf("compactShape(%q) accepts = %v, want %v", raw, got, want)
		}
	})
}

func TestBase64URLChar(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for c := range 256 {
		want := strings.IndexByte(alphabet, byte(c))
		if got := base64URLChar(byte(c)); got != (want >= 0) {
			t.Errorf("base64URLChar(%#x) = %v, want %v", c, got, want >= 0)
		}
		if v, ok := base64URLValue(byte(c)); ok != (want >= 0) || (ok && int(v) != want) {
			t.Errorf("base64URLValue(%#x) = %d, %v, want %d", c, v, ok, want)
		}
	}
}

// FuzzNumericDate: numericDate's integer fast path gives what the general
// ParseFloat path gives, for every JSON number.
func FuzzNumericDate(f *testing.F) {
	for _, s := range []string{"0", "-0", "1700000000", "-62135596800", "-62135596801", "253402300799", "253402300800",
		"999999999999999", "1000000000000000", "1.5", "-1.5e3", "1e10", "12345678901234567890", `"1"`, "null"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		raw := []byte(s)
		sc := jsonScanner{b: raw}
		if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) || !sc.value(1) || sc.i != len(raw) {
			return // not a JSON number
		}
		got, ok := numericDate(raw)
		fl, err := strconv.ParseFloat(s, 64)
		wantOK := err == nil && fl >= minNumericDate && fl <= maxNumericDate
		if ok != wantOK || (ok && !got.Equal(time.Unix(int64(fl), 0))) {
			t.Fatalf("numericDate(%s) = %v, %v; ParseFloat gives %v, %v", s, got, ok, fl, wantOK)
		}
	})
}
