package authz

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/agentos-authz/agentos-authz/authz/internal/jwtauth"
)

// TestConformanceJWT runs the JWT part of every conformance vector
// (../../shared/conformance, README there) through Verify: the vector's
// jwt: section and env become a Verifier, its token is minted as the
// harness would, and the outcome is compared where it is the verifier's:
// a 401 token detail, or a valid token (200 with identity headers, or 403).
// Credential extraction, paths, scopes and the security key are Decide's
// and skipped here. Startup vectors about the jwt: section are checked
// against Check.
func TestConformanceJWT(t *testing.T) {
	dir := filepath.Join("..", "..", "shared", "conformance")
	files, _ := filepath.Glob(filepath.Join(dir, "vectors", "*.json"))
	if len(files) == 0 {
		t.Skip("no conformance vectors beside the repository")
	}
	ck := loadConformanceKeys(t, filepath.Join(dir, "keys"))
	ran, skipped := 0, 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var group struct {
			Config  map[string]any      `json:"config"`
			Env     map[string]string   `json:"env"`
			Vectors []conformanceVector `json:"vectors"`
		}
		if bytes.HasPrefix(bytes.TrimSpace(data), []byte("[")) {
			err = json.Unmarshal(data, &group.Vectors)
		} else {
			err = json.Unmarshal(data, &group)
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, vec := range group.Vectors {
			cfg, env := group.Config, group.Env
			if vec.Config != nil {
				cfg = vec.Config
			}
			if vec.Env != nil {
				env = vec.Env
			}
			t.Run(vec.Name, func(t *testing.T) {
				if vec.run(t, ck, cfg, env) {
					ran++
				} else {
					skipped++
				}
			})
		}
	}
	t.Logf("conformance vectors through Verify/Check: %d run, %d not about the verifier", ran, skipped)
}

type conformanceVector struct {
	Name    string            `json:"name"`
	Config  map[string]any    `json:"config"`
	Env     map[string]string `json:"env"`
	Token   *vectorToken      `json:"token"`
	Token2  *vectorToken      `json:"token2"`
	Request struct {
		Method  string            `json:"method"`
		Omit    string            `json:"omit"`
		Headers map[string]string `json:"headers"`
	} `json:"request"`
	Expect struct {
		Status         any            `json:"status"`
		Detail         *string        `json:"detail"`
		DetailPrefix   *string        `json:"detail_prefix"`
		Headers        map[string]any `json:"headers"`
		Absent         []string       `json:"absent_headers"`
		ExitCode       int            `json:"exit_code"`
		StderrContains []string       `json:"stderr_contains"`
	} `json:"expect"`
}

type vectorToken struct {
	Alg        string         `json:"alg"`
	Key        string         `json:"key"`
	Secret     *string        `json:"secret"`
	Claims     map[string]any `json:"claims"`
	Header     map[string]any `json:"header"`
	Raw        *string        `json:"raw"`
	PayloadRaw *string        `json:"payload_raw"`
	Tamper     *vectorTamper  `json:"tamper"`
}

type vectorTamper struct {
	Claims    map[string]any `json:"claims"`
	Signature bool           `json:"signature"`
}

// conformanceKeys are the suite's keys by name.
type conformanceKeys struct {
	priv   map[string]crypto.Signer
	text   map[string]string // "pub:rs", "cert:rs", "secret:hs"
	secret map[string]string
}

func loadConformanceKeys(t *testing.T, dir string) *conformanceKeys {
	t.Helper()
	ck := &conformanceKeys{priv: map[string]crypto.Signer{}, text: map[string]string{}, secret: map[string]string{}}
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, p := range names {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Base(p)
		name, kind, _ := strings.Cut(base, ".")
		switch kind {
		case "key.pem":
			block, _ := pem.Decode(b)
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				t.Fatalf("%s: %v", base, err)
			}
			ck.priv[name] = k.(crypto.Signer)
		case "pub.pem":
			ck.text["pub:"+name] = string(b)
		case "crt.pem":
			ck.text["cert:"+name] = string(b)
		case "secret":
			ck.secret[name] = strings.TrimSpace(string(b))
			ck.text["secret:"+name] = ck.secret[name]
		}
	}
	return ck
}

// placeholders replaces the README's @pub:/@cert:/@secret:/@jwks:/@file:
// strings inside v.
func (ck *conformanceKeys) placeholders(t *testing.T, v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = ck.placeholders(t, e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = ck.placeholders(t, e)
		}
		return out
	case string:
		return ck.placeholder(t, x)
	}
	return v
}

func (ck *conformanceKeys) placeholder(t *testing.T, s string) string {
	kind, arg, ok := strings.Cut(s, ":")
	if !ok || !strings.HasPrefix(kind, "@") {
		return s
	}
	switch kind {
	case "@pub", "@cert", "@secret":
		text, ok := ck.text[kind[1:]+":"+arg]
		if !ok {
			t.Fatalf("unknown key placeholder %s", s)
		}
		return text
	case "@jwks", "@jwks-nokid":
		var pubs []crypto.PublicKey
		var kids, algs []string
		for spec := range strings.SplitSeq(arg, ",") {
			name, kid, hasKid := strings.Cut(spec, "=")
			if !hasKid {
				kid = name
			}
			if kind == "@jwks-nokid" {
				kid = ""
			}
			pubs = append(pubs, ck.priv[name].Public())
			kids = append(kids, kid)
			algs = append(algs, map[byte]string{'r': "RS256", 'e': "ES256"}[name[0]])
		}
		return jtWriteFile(t, "jwks.json", jtJWKS(t, pubs, kids, algs))
	case "@file":
		switch arg {
		case "missing":
			return filepath.Join(t.TempDir(), "missing.json")
		case "invalid-json":
			return jtWriteFile(t, "invalid.json", []byte("this is { not json"))
		}
	}
	t.Fatalf("unknown placeholder %s", s)
	return ""
}

// run checks the vector; false when the vector is not about the verifier.
func (vec *conformanceVector) run(t *testing.T, ck *conformanceKeys, rawCfg map[string]any, env map[string]string) bool {
	cfgMap, _ := ck.placeholders(t, rawCfg).(map[string]any)
	jwtSection, _ := cfgMap["jwt"].(map[string]any)
	var cfg JWTConfig
	decodeErr := decodeJWTSection(jwtSection, &cfg)
	for k, v := range env {
		v = ck.placeholder(t, v)
		switch k {
		case "JWT_VERIFICATION_KEY":
			cfg.VerificationKeys = append(cfg.VerificationKeys, v)
		case "JWT_JWKS_FILE":
			cfg.JWKSFile = v
		case "AGENT_OS_ID":
			cfgMap["os_id"] = v
		}
	}

	if vec.Expect.ExitCode != 0 {
		return vec.runStartup(t, &cfg, decodeErr)
	}
	if decodeErr != nil {
		t.Fatalf("decode jwt section: %v", decodeErr)
	}
	if !cfg.HasSource() || vec.Token == nil || vec.Token2 != nil || vec.Request.Omit != "" || strings.EqualFold(vec.Request.Method, "OPTIONS") {
		return false
	}
	status, ok := vec.Expect.Status.(float64)
	if !ok {
		return false // a list: not a verifier-only outcome
	}
	if h, _ := vec.Expect.Headers["x-agentos-auth"].(string); h == "none" || h == "security-key" {
		return false
	}
	var detail, prefix string
	if vec.Expect.Detail != nil {
		detail = *vec.Expect.Detail
	}
	if vec.Expect.DetailPrefix != nil {
		prefix = *vec.Expect.DetailPrefix
	}
	tokenDetail := detail == detailExpired || detail == detailInvalidAudience || detail == detailInvalidSubject ||
		strings.HasPrefix(detail, detailInvalidPrefix) || prefix == detailInvalidPrefix
	switch {
	case status == 401 && !tokenDetail, status == 400:
		return false
	case status != 401 && status != 200 && status != 403:
		return false
	}
	for name, val := range vec.Request.Headers {
		// Only a token sent as is ("Bearer <t>", a bare token, or a
		// cookie) reaches Verify unchanged; other shapes are the
		// credential extractor's business.
		before, after, found := strings.Cut(val, "{token}")
		if !found {
			continue
		}
		plain := (strings.EqualFold(before, "bearer ") || before == "") && after == ""
		cookie := name == "cookie" && strings.HasSuffix(before, "=") && (after == "" || strings.HasPrefix(after, ";"))
		if !plain && !cookie {
			return false
		}
	}
	if key, _ := cfgMap["security_key"].(string); key != "" && vec.Token.Raw != nil && *vec.Token.Raw == key {
		return false
	}

	var aud []string
	if cfg.VerifyAudience {
		aud = cfg.Audience
		if len(aud) == 0 {
			if os, _ := cfgMap["os_id"].(string); os != "" {
				aud = []string{os}
			}
		}
	}
	vc := cfg.verifierConfig()
	v, err := jwtauth.New(&vc, jwtauth.Options{Audience: aud, Clock: jtClock})
	if err != nil {
		t.Fatalf("jwtauth.New: %v", err)
	}
	raw := ck.mint(t, vec.Token)
	id, jf := v.Verify(t.Context(), raw)
	var f *Failure
	if jf != nil {
		f = tokenFailure(jf)
	}
	if status == 401 {
		if f == nil {
			t.Fatalf("Verify = valid, want %q%q", detail, prefix)
		}
		if detail != "" && f.Detail != detail || prefix != "" && !strings.HasPrefix(f.Detail, prefix) {
			t.Fatalf("Verify detail = %q, want %q%q", f.Detail, detail, prefix)
		}
		return true
	}
	if f != nil {
		t.Fatalf("Verify = %q, want a valid token (vector status %v)", f.Detail, status)
	}
	got := map[string]string{}
	if id.UserID != "" {
		got["x-agentos-user-id"] = id.UserID
	}
	if id.SessionID != "" {
		got["x-agentos-session-id"] = id.SessionID
	}
	if len(id.Scopes) > 0 && cfgMap["authorization"] != false {
		got["x-agentos-scopes"] = strings.Join(id.Scopes, " ")
	}
	for _, h := range id.Forward {
		got[h.Name] = h.Value
	}
	for name, want := range vec.Expect.Headers {
		if name == "x-agentos-auth" || name == "x-agentos-accessible-ids" || strings.HasPrefix(name, "x-agentos-scopes") && cfgMap["authorization"] == false {
			continue
		}
		switch w := want.(type) {
		case string:
			if got[name] != w {
				t.Errorf("%s = %q, want %q", name, got[name], w)
			}
		case map[string]any:
			if j, ok := w["json"]; ok {
				var g any
				if err := json.Unmarshal([]byte(got[name]), &g); err != nil || !jsonEqual(g, j) {
					t.Errorf("%s = %s, want JSON %v", name, got[name], j)
				}
			}
		}
	}
	for _, name := range vec.Expect.Absent {
		if _, ok := got[name]; ok {
			t.Errorf("%s = %q, want absent", name, got[name])
		}
	}
	return true
}

// runStartup checks a startup vector whose problem is in the jwt: section.
func (vec *conformanceVector) runStartup(t *testing.T, cfg *JWTConfig, decodeErr error) bool {
	jwtWords := []string{"jwks_file", "leeway", "algorithms", "ES256", "roles"}
	ours := false
	for _, s := range vec.Expect.StderrContains {
		for _, w := range jwtWords {
			ours = ours || strings.EqualFold(s, w)
		}
	}
	if !ours {
		return false
	}
	if decodeErr != nil {
		return true // the YAML decoder refuses it (it names the field, see config_decode.go)
	}
	errs := cfg.Check()
	if len(errs) == 0 {
		t.Fatal("Check() = no error, want a startup error")
	}
	text := errors.Join(errs...).Error()
	for _, s := range vec.Expect.StderrContains {
		if !strings.Contains(strings.ToLower(text), strings.ToLower(s)) {
			t.Errorf("Check() = %q, want it to mention %q", text, s)
		}
	}
	return true
}

// decodeJWTSection decodes the jwt: section strictly, as the loader does.
func decodeJWTSection(section map[string]any, cfg *JWTConfig) error {
	*cfg = DefaultJWTConfig()
	if section == nil {
		return nil
	}
	text, err := yaml.Marshal(section)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(text))
	dec.KnownFields(true)
	return dec.Decode(cfg)
}

// mint builds a vector's token as the README says.
func (ck *conformanceKeys) mint(t *testing.T, vt *vectorToken) string {
	if vt.Raw != nil {
		return *vt.Raw
	}
	alg := vt.Alg
	if alg == "" {
		alg = "HS256"
	}
	claims := map[string]any{}
	for k, v := range vt.Claims {
		if s, ok := v.(string); ok && (k == "exp" || k == "nbf" || k == "iat") {
			if ts, ok := relativeTime(s); ok {
				v = ts
			}
		}
		claims[k] = v
	}
	tk := jtToken{alg: alg, claims: claims, header: vt.Header}
	if vt.PayloadRaw != nil {
		tk.payload = []byte(*vt.PayloadRaw)
	}
	if strings.EqualFold(alg, "none") {
		if a, ok := vt.Header["alg"]; ok {
			tk.header = map[string]any{"alg": a}
		}
	}
	keyName := vt.Key
	if keyName == "" {
		keyName = "hs"
	}
	switch {
	case vt.Secret != nil:
		tk.key = *vt.Secret
	case strings.HasPrefix(keyName, "pem:"):
		tk.key = ck.text["pub:"+strings.TrimPrefix(keyName, "pem:")]
	case strings.HasPrefix(alg, "HS"):
		tk.key = ck.secret[keyName]
	default:
		tk.key = ck.priv[keyName]
	}
	raw := jtMint(t, tk)
	if vt.Tamper != nil {
		parts := strings.Split(raw, ".")
		if vt.Tamper.Claims != nil {
			merged := map[string]any{}
			for k, v := range claims {
				merged[k] = v
			}
			for k, v := range vt.Tamper.Claims {
				merged[k] = v
			}
			b, _ := json.Marshal(merged)
			parts[1] = jtB64.EncodeToString(b)
		}
		raw = strings.Join(parts, ".")
		if vt.Tamper.Signature {
			raw = jtFlipSig(raw)
		}
	}
	return raw
}

// relativeTime reads "now", "+N<unit>", "-N<unit>" (units s m h d).
func relativeTime(s string) (int64, bool) {
	if s == "now" {
		return jtNow.Unix(), true
	}
	if len(s) < 3 || (s[0] != '+' && s[0] != '-') {
		return 0, false
	}
	n, err := strconv.Atoi(s[1 : len(s)-1])
	if err != nil {
		return 0, false
	}
	unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[s[len(s)-1]]
	if unit == 0 {
		return 0, false
	}
	d := time.Duration(n) * unit
	if s[0] == '-' {
		d = -d
	}
	return jtNow.Add(d).Unix(), true
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
