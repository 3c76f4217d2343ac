package authz

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzVerify: whatever the token string, Verify does not panic, answers
// one of the 401 reasons with an "Invalid token: " detail or a fixed
// contract message that quotes no part of the token, and only the
// unmodified valid seeds verify.
func FuzzVerify(f *testing.F) {
	k := jtLoadKeys(f)
	v := jtVerifier(f, jtBaseConfig(k), VerifierOptions{Audience: []string{"test-os"}})
	laxCfg := jtBaseConfig(k)
	laxCfg.Validate = jtPtr(false)
	lax := jtVerifier(f, laxCfg, VerifierOptions{})

	// Valid seeds use deterministic signatures (not ES256): every fuzz
	// worker mints the same strings.
	valid := map[string]bool{}
	for _, tk := range []jtToken{
		{alg: "HS256", key: k.hs, claims: jtClaims(nil)},                                  // valid
		{alg: "RS256", key: k.rs.priv, claims: jtClaims(nil)},                             // valid
		{alg: "EdDSA", key: k.ed.priv, claims: jtClaims(map[string]any{"scopes": "a b"})}, // valid
	} {
		raw := jtMint(f, tk)
		valid[raw] = true
		f.Add(raw)
	}
	for _, s := range []string{
		"", "garbage", "a.b", "a.b.c", "a.b.c.d", "@@@.###.$$$", // malformed
		"bm90LWpzb24.eyJzdWIiOiJ4In0.c2ln",                                            // header not JSON
		jtMint(f, jtToken{alg: "none", claims: jtClaims(nil)}),                        // unsigned
		jtMint(f, jtToken{alg: "HS512", key: k.hs, claims: jtClaims(nil)}),            // not allowed
		jtMint(f, jtToken{alg: "HS256", key: k.rs.pubPEM, claims: jtClaims(nil)}),     // alg confusion
		jtMint(f, jtToken{alg: "HS256", key: k.hs, payload: []byte(`{"exp":"x"}`)}),   // bad claims
		jtMint(f, jtToken{alg: "HS256", key: k.hs, payload: []byte(`{"exp":1e400}`)}), // huge exp
		jtMint(f, jtToken{alg: "HS256", key: k.hs, claims: jtClaims(map[string]any{"aud": []any{}})}),
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
		switch fail.Reason {
		case ReasonInvalidToken:
			if !strings.HasPrefix(fail.Detail, detailInvalidPrefix) {
				t.Fatalf("detail %q", fail.Detail)
			}
		case ReasonTokenExpired, ReasonInvalidAudience, ReasonInvalidSubject:
		default:
			t.Fatalf("reason %v", fail.Reason)
		}
		for part := range strings.SplitSeq(raw, ".") {
			if len(part) >= 8 && strings.Contains(fail.Detail, part) {
				t.Fatalf("detail %q quotes the token", fail.Detail)
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
		got, ok := scanClaims(payload)
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
			names[c.name] = true
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
