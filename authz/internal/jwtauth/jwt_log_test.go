package jwtauth

import (
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/agentos-authz/agentos-authz/internal/jwttest"
)

// TestVerifierLogsNoSecrets: at debug level, nothing the verifier logs
// contains a token, an HMAC secret or key material; validate: false is
// announced loudly.
func TestVerifierLogsNoSecrets(t *testing.T) {
	k := jwttest.LoadKeys(t)
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)

	strict := jtBaseConfig(k)
	strict.VerificationKeys = append(strict.VerificationKeys, k.RSCert)
	lax := jtBaseConfig(k)
	lax.Validate = jwttest.Ptr(false)
	var toks []string
	for _, c := range []Config{strict, lax} {
		v := jtVerifier(t, c, Options{Logger: log, Audience: []string{"test-os"}})
		for _, tk := range []jwttest.Token{
			{Alg: "HS256", Key: k.HS, Claims: jwttest.Claims(nil)},
			{Alg: "HS256", Key: "wrong", Claims: jwttest.Claims(nil)},
			{Alg: "RS256", Key: k.RS.Priv, Claims: jwttest.Claims(map[string]any{"exp": unix(-3600)})},
			{Alg: "ES256", Key: k.ES.Priv, Claims: jwttest.Claims(map[string]any{"sub": "sa:x"})},
			{Alg: "none", Claims: jwttest.Claims(nil)},
		} {
			raw := jwttest.Mint(t, tk)
			toks = append(toks, raw)
			v.Verify(t.Context(), raw)
		}
		v.Verify(t.Context(), "garbage.token.value")
	}

	if logs.Len() == 0 {
		t.Fatal("no log entries: the test would not see a leak")
	}
	secrets := []string{k.HS, "wrong"}
	for _, pemText := range []string{k.RS.PubPEM, k.ES.PubPEM, k.ED.PubPEM, k.RSCert} {
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
