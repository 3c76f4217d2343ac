package jwtauth

import (
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestVerifierLogsNoSecrets: at debug level, nothing the verifier logs
// contains a token, an HMAC secret or key material; validate: false is
// announced loudly.
func TestVerifierLogsNoSecrets(t *testing.T) {
	k := jtLoadKeys(t)
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)

	strict := jtBaseConfig(k)
	strict.VerificationKeys = append(strict.VerificationKeys, k.rsCert)
	lax := jtBaseConfig(k)
	lax.Validate = jtPtr(false)
	var toks []string
	for _, c := range []Config{strict, lax} {
		v := jtVerifier(t, c, Options{Logger: log, Audience: []string{"test-os"}})
		for _, tk := range []jtToken{
			{alg: "HS256", key: k.hs, claims: jtClaims(nil)},
			{alg: "HS256", key: "wrong", claims: jtClaims(nil)},
			{alg: "RS256", key: k.rs.priv, claims: jtClaims(map[string]any{"exp": unix(-3600)})},
			{alg: "ES256", key: k.es.priv, claims: jtClaims(map[string]any{"sub": "sa:x"})},
			{alg: "none", claims: jtClaims(nil)},
		} {
			raw := jtMint(t, tk)
			toks = append(toks, raw)
			v.Verify(t.Context(), raw)
		}
		v.Verify(t.Context(), "garbage.token.value")
	}

	if logs.Len() == 0 {
		t.Fatal("no log entries: the test would not see a leak")
	}
	secrets := []string{k.hs, "wrong"}
	for _, pemText := range []string{k.rs.pubPEM, k.es.pubPEM, k.ed.pubPEM, k.rsCert} {
		for line := range strings.SplitSeq(pemText, "\n") {
			if len(line) > 16 && !strings.HasPrefix(line, "-----") {
				secrets = append(secrets, line)
			}
		}
	}
	for _, raw := range toks {
		for part := range strings.SplitSeq(raw, ".") {
			if len(part) >= 8 {
				secrets = append(secrets, part)
			}
		}
	}
	warned := false
	for _, e := range logs.All() {
		fields, _ := json.Marshal(e.ContextMap())
		text := e.Message + " " + string(fields)
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("log entry %q leaks %q", text, s)
			}
		}
		if e.Level == zapcore.WarnLevel && strings.Contains(e.Message, "NOT VERIFIED") {
			warned = true
		}
	}
	if !warned {
		t.Error("validate: false did not log a warning")
	}
}
