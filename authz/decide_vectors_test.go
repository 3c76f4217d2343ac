package authz

// The conformance vectors (shared/conformance/, README.md there) run
// in-process through Load, New and Decide: the same decisions the
// black-box suite in test/ checks over gRPC, without the transport.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// conformanceDir is the shared contract material beside the module.
const conformanceDir = "../../shared/conformance"

type vectorFile struct {
	Config  json.RawMessage   `json:"config"`
	Env     map[string]string `json:"env"`
	Vectors []vector          `json:"vectors"`
}

type vector struct {
	Name    string            `json:"name"`
	Config  json.RawMessage   `json:"config"`
	Env     map[string]string `json:"env"`
	Token   *tokenSpec        `json:"token"`
	Token2  *tokenSpec        `json:"token2"`
	Request vectorRequest     `json:"request"`
	Expect  vectorExpect      `json:"expect"`
}

type tokenSpec struct {
	Alg        string                     `json:"alg"`
	Key        string                     `json:"key"`
	Secret     *string                    `json:"secret"`
	Claims     json.RawMessage            `json:"claims"`
	Header     map[string]json.RawMessage `json:"header"`
	Raw        *string                    `json:"raw"`
	PayloadRaw *string                    `json:"payload_raw"`
	Tamper     *struct {
		Claims    json.RawMessage `json:"claims"`
		Signature bool            `json:"signature"`
	} `json:"tamper"`
}

type vectorRequest struct {
	Method      string            `json:"method"`
	Path        string            `json:"path"`
	Headers     map[string]string `json:"headers"`
	HeaderLines [][2]string       `json:"header_lines"`
	RawHeaders  bool              `json:"raw_headers"`
	Omit        string            `json:"omit"`
}

type vectorExpect struct {
	Status                json.RawMessage            `json:"status"`
	Detail                *string                    `json:"detail"`
	DetailPrefix          *string                    `json:"detail_prefix"`
	Headers               map[string]json.RawMessage `json:"headers"`
	AbsentHeaders         []string                   `json:"absent_headers"`
	ResponseHeaders       map[string]string          `json:"response_headers"`
	AbsentResponseHeaders []string                   `json:"absent_response_headers"`
	ExitCode              *int                       `json:"exit_code"`
	StderrContains        []string                   `json:"stderr_contains"`
}

func loadVectorFiles(t testing.TB) map[string]vectorFile {
	t.Helper()
	dir := filepath.Join(conformanceDir, "vectors")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Skipf("no conformance vectors in %s (%v): the shared material is not beside the module", dir, err)
	}
	out := map[string]vectorFile{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var vf vectorFile
		if bytes.HasPrefix(bytes.TrimSpace(data), []byte("[")) {
			err = json.Unmarshal(data, &vf.Vectors)
		} else {
			err = json.Unmarshal(data, &vf)
		}
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = vf
	}
	return out
}

// keyring is the fixed key material of conformance/keys.
type keyring struct {
	dir string
	tmp string // where @jwks and @file placeholders are written
}

func (k *keyring) read(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k.dir, name))
	if err != nil {
		t.Fatalf("key %s: %v", name, err)
	}
	return string(b)
}

func (k *keyring) secret(t testing.TB, name string) string {
	return strings.TrimSpace(k.read(t, name+".secret"))
}

func (k *keyring) private(t testing.TB, name string) crypto.Signer {
	t.Helper()
	block, _ := pem.Decode([]byte(k.read(t, name+".key.pem")))
	if block == nil {
		t.Fatalf("key %s: no PEM", name)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("key %s: %v", name, err)
	}
	return key.(crypto.Signer)
}

var placeholder = regexp.MustCompile(`^@(pub|cert|secret|jwks|jwks-nokid|file):(.*)$`)

// substitute resolves one placeholder string (README "Placeholders").
func (k *keyring) substitute(t testing.TB, v string) string {
	t.Helper()
	m := placeholder.FindStringSubmatch(v)
	if m == nil {
		return v
	}
	switch m[1] {
	case "pub":
		return k.read(t, m[2]+".pub.pem")
	case "cert":
		return k.read(t, m[2]+".crt.pem")
	case "secret":
		return k.secret(t, m[2])
	case "jwks", "jwks-nokid":
		return k.writeJWKS(t, m[2], m[1] == "jwks")
	case "file":
		switch m[2] {
		case "missing":
			return filepath.Join(k.tmp, "does-not-exist.json")
		case "invalid-json":
			p := filepath.Join(k.tmp, "invalid.json")
			if err := os.WriteFile(p, []byte("{not json"), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
	}
	t.Fatalf("unknown placeholder %q", v)
	return ""
}

func (k *keyring) writeJWKS(t testing.TB, spec string, withKid bool) string {
	t.Helper()
	set := jwk.NewSet()
	for _, item := range strings.Split(spec, ",") {
		name, kid, hasEq := strings.Cut(item, "=")
		if !hasEq {
			kid = name
		}
		if !withKid {
			kid = ""
		}
		key, err := jwk.ParseKey([]byte(k.read(t, name+".pub.pem")), jwk.WithPEM(true))
		if err != nil {
			t.Fatal(err)
		}
		var raw any
		if err := key.Raw(&raw); err != nil {
			t.Fatal(err)
		}
		alg := jwa.RS256
		switch r := raw.(type) {
		case *ecdsa.PublicKey:
			if r.Curve != elliptic.P256() {
				t.Fatalf("key %s: curve %s", name, r.Curve.Params().Name)
			}
			alg = jwa.ES256
		case ed25519.PublicKey:
			alg = jwa.EdDSA
		case *rsa.PublicKey:
		}
		must(t, key.Set(jwk.AlgorithmKey, alg))
		must(t, key.Set(jwk.KeyUsageKey, jwk.ForSignature))
		if kid != "" {
			must(t, key.Set(jwk.KeyIDKey, kid))
		}
		must(t, set.AddKey(key))
	}
	b, err := json.Marshal(set)
	must(t, err)
	p := filepath.Join(k.tmp, "jwks-"+strconv.Itoa(len(spec))+"-"+strings.NewReplacer(",", "_", "=", "-").Replace(spec)+".json")
	must(t, os.WriteFile(p, b, 0o600))
	return p
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// configYAML turns a vector's JSON config into the YAML text of a config
// file: JSON is YAML, and the key order (scope_mappings!) is kept because
// the text is kept; only placeholder strings are replaced.
func (k *keyring) configYAML(t testing.TB, raw json.RawMessage) []byte {
	t.Helper()
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return placeholderLiteral.ReplaceAllFunc(raw, func(b []byte) []byte {
		var s string
		must(t, json.Unmarshal(b, &s))
		q, err := json.Marshal(k.substitute(t, s))
		must(t, err)
		return q
	})
}

// placeholderLiteral is a JSON string that is a placeholder.
var placeholderLiteral = regexp.MustCompile(`"@(?:pub|cert|secret|jwks|jwks-nokid|file):[^"]*"`)

var relTime = regexp.MustCompile(`^([+-])(\d+)([smhd])$`)

// mint builds the token of spec at now (README "Token").
func (k *keyring) mint(t testing.TB, spec *tokenSpec, now time.Time) string {
	t.Helper()
	if spec.Raw != nil {
		return *spec.Raw
	}
	alg := spec.Alg
	if alg == "" {
		alg = "HS256"
	}
	enc := base64.RawURLEncoding
	header := map[string]any{"alg": alg, "typ": "JWT"}
	for name, v := range spec.Header {
		if string(v) == "null" {
			delete(header, name)
			continue
		}
		var x any
		must(t, json.Unmarshal(v, &x))
		header[name] = x
	}
	hb, err := json.Marshal(header)
	must(t, err)
	claims := resolveClaims(t, spec.Claims, now)
	var payload []byte
	if spec.PayloadRaw != nil {
		payload = []byte(*spec.PayloadRaw)
	} else {
		payload, err = json.Marshal(claims)
		must(t, err)
	}
	input := enc.EncodeToString(hb) + "." + enc.EncodeToString(payload)
	sig := ""
	if !strings.EqualFold(alg, "none") {
		var key any
		switch {
		case strings.HasPrefix(alg, "HS") && spec.Secret != nil:
			key = []byte(*spec.Secret)
		case strings.HasPrefix(alg, "HS") && strings.HasPrefix(spec.Key, "pem:"):
			key = []byte(k.read(t, strings.TrimPrefix(spec.Key, "pem:")+".pub.pem"))
		case strings.HasPrefix(alg, "HS"):
			name := spec.Key
			if name == "" {
				name = "hs"
			}
			key = []byte(k.secret(t, name))
		default:
			key = k.private(t, spec.Key)
		}
		signer, err := jws.NewSigner(jwa.SignatureAlgorithm(alg))
		must(t, err)
		s, err := signer.Sign([]byte(input), key)
		must(t, err)
		sig = enc.EncodeToString(s)
	}
	if tp := spec.Tamper; tp != nil {
		if tp.Claims != nil {
			merged := maps.Clone(claims)
			maps.Copy(merged, resolveClaims(t, tp.Claims, now))
			pb, err := json.Marshal(merged)
			must(t, err)
			input = enc.EncodeToString(hb) + "." + enc.EncodeToString(pb)
		}
		if tp.Signature {
			c := byte('A')
			if sig[0] == 'A' {
				c = 'B'
			}
			sig = string(c) + sig[1:]
		}
	}
	return input + "." + sig
}

func resolveClaims(t testing.TB, raw json.RawMessage, now time.Time) map[string]any {
	t.Helper()
	claims := map[string]any{}
	if len(raw) == 0 {
		return claims
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	must(t, dec.Decode(&claims))
	for _, name := range []string{"exp", "nbf", "iat"} {
		s, ok := claims[name].(string)
		if !ok {
			continue
		}
		if s == "now" {
			claims[name] = now.Unix()
			continue
		}
		m := relTime.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[m[3]]
		d := time.Duration(n) * unit
		if m[1] == "-" {
			d = -d
		}
		claims[name] = now.Add(d).Unix()
	}
	return claims
}

// request builds the authz.Request an adapter would make of the vector's
// CheckRequest (README "Request"); it also returns the upstream's view of
// the client headers.
func buildRequest(v *vector, tok, tok2 string) *Request {
	if v.Request.Omit != "" {
		return &Request{Malformed: true}
	}
	method := v.Request.Method
	if method == "" {
		method = "GET"
	}
	h := map[string]string{}
	mentioned := false
	for name, val := range v.Request.Headers {
		if strings.Contains(val, "{token}") {
			mentioned = true
		}
		val = strings.ReplaceAll(strings.ReplaceAll(val, "{token2}", tok2), "{token}", tok)
		h[strings.ToLower(name)] = val
	}
	if v.Token != nil && !mentioned {
		h["authorization"] = "Bearer " + tok
	}
	for _, l := range v.Request.HeaderLines {
		name := strings.ToLower(l[0])
		if prev, ok := h[name]; ok {
			h[name] = prev + "," + l[1]
		} else {
			h[name] = l[1]
		}
	}
	if host, ok := h["host"]; ok {
		delete(h, "host")
		h[":authority"] = host
	}
	for name, def := range map[string]string{
		":authority": "agentos.test", ":method": method, ":path": v.Request.Path, ":scheme": "http",
		"x-forwarded-proto": "http", "x-request-id": "req-" + v.Name, "user-agent": "conformance",
	} {
		if _, ok := h[name]; !ok {
			h[name] = def
		}
	}
	return &Request{Method: method, Path: v.Request.Path, Headers: h}
}

// checkVector compares a decision with the vector's expectation and
// returns the differences.
func checkVector(v *vector, r *Request, d Decision) []string {
	var diffs []string
	bad := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }
	e := &v.Expect
	var statuses []int
	if err := json.Unmarshal(e.Status, &statuses); err != nil {
		var one int
		if err := json.Unmarshal(e.Status, &one); err != nil {
			return []string{"bad expect.status " + string(e.Status)}
		}
		statuses = []int{one}
	}
	if !slices.Contains(statuses, d.Status) {
		bad("status %d (%s, %q), want %v", d.Status, d.Reason, d.Detail, statuses)
		return diffs
	}
	if d.Allowed() {
		if d.Detail != "" || d.Response != nil {
			bad("an allow with detail %q / response headers %v", d.Detail, d.Response)
		}
	} else {
		if d.Detail == "" || (d.Status != 400 && d.Status != 401 && d.Status != 403) {
			bad("deny %d with detail %q", d.Status, d.Detail)
		}
	}
	if e.Detail != nil && d.Detail != *e.Detail {
		bad("detail %q, want %q", d.Detail, *e.Detail)
	}
	if e.DetailPrefix != nil && !strings.HasPrefix(d.Detail, *e.DetailPrefix) {
		bad("detail %q, want prefix %q", d.Detail, *e.DetailPrefix)
	}
	// The upstream's view: client headers, then our set headers
	// (overwriting), then our removals.
	up := map[string]string{}
	if d.Allowed() {
		maps.Copy(up, r.Headers)
		seen := map[string]bool{}
		for _, h := range d.Upstream {
			if seen[h.Name] {
				bad("upstream header %s set twice", h.Name)
			}
			seen[h.Name] = true
			up[h.Name] = h.Value
		}
		if !sort.StringsAreSorted(d.Remove) {
			bad("Remove %q not sorted", d.Remove)
		}
		for _, name := range d.Remove {
			if seen[name] {
				bad("header %s both set and removed", name)
			}
			delete(up, name)
		}
		// Always: no client-sent x-agentos-* value reaches the upstream.
		for name, val := range r.Headers {
			if strings.HasPrefix(name, "x-agentos-") && !seen[name] && up[name] == val {
				bad("client header %s: %q passes to the upstream", name, val)
			}
		}
	}
	for name, want := range e.Headers {
		got, ok := up[name]
		if !ok {
			bad("upstream header %s absent, want %s", name, want)
			continue
		}
		var s string
		var obj struct {
			Set  []string        `json:"set"`
			JSON json.RawMessage `json:"json"`
		}
		switch {
		case json.Unmarshal(want, &s) == nil:
			if got != s {
				bad("upstream %s = %q, want %q", name, got, s)
			}
		case json.Unmarshal(want, &obj) == nil && obj.Set != nil:
			var ids []string
			if err := json.Unmarshal([]byte(got), &ids); err != nil {
				bad("upstream %s = %q: not a JSON array of strings", name, got)
				continue
			}
			if len(ids) != len(obj.Set) || !sameElements(ids, obj.Set) {
				bad("upstream %s = %q, want the set %q", name, got, obj.Set)
			}
		case obj.JSON != nil:
			var g, w any
			if json.Unmarshal([]byte(got), &g) != nil || json.Unmarshal(obj.JSON, &w) != nil || !reflect.DeepEqual(g, w) {
				bad("upstream %s = %q, want JSON %s", name, got, obj.JSON)
			}
		default:
			bad("unreadable expectation for %s: %s", name, want)
		}
	}
	for _, name := range e.AbsentHeaders {
		if got, ok := up[name]; ok {
			bad("upstream header %s = %q, want absent", name, got)
		}
	}
	resp := map[string]string{}
	for _, h := range d.Response {
		resp[h.Name] = h.Value
	}
	for name, want := range e.ResponseHeaders {
		if resp[name] != want {
			bad("response header %s = %q, want %q", name, resp[name], want)
		}
	}
	for _, name := range e.AbsentResponseHeaders {
		if got, ok := resp[name]; ok {
			bad("response header %s = %q, want absent", name, got)
		}
	}
	return diffs
}

func sameElements(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b) && len(slices.Compact(a)) == len(b)
}

// TestConformanceVectors runs every vector of shared/conformance through
// Load → New → Decide under a fixed clock, the startup cases included.
func TestConformanceVectors(t *testing.T) {
	files := loadVectorFiles(t)
	keys := &keyring{dir: filepath.Join(conformanceDir, "keys"), tmp: t.TempDir()}
	now := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	total, passed := 0, 0
	for _, fname := range slices.Sorted(maps.Keys(files)) {
		vf := files[fname]
		authorizers := map[string]*Authorizer{}
		for i := range vf.Vectors {
			v := &vf.Vectors[i]
			total++
			t.Run(v.Name, func(t *testing.T) {
				cfgRaw, envMap := vf.Config, vf.Env
				if v.Config != nil {
					cfgRaw = v.Config
				}
				if v.Env != nil {
					envMap = v.Env
				}
				yamlText := keys.configYAML(t, cfgRaw)
				envResolved := map[string]string{}
				for k, val := range envMap {
					envResolved[k] = keys.substitute(t, val)
				}
				cacheKey := string(cfgRaw) + "\x00" + fmt.Sprint(envMap)
				if v.Expect.ExitCode != nil {
					cfg, err := Load(yamlText, env(envResolved), Flags{})
					if err == nil {
						_, err = New(cfg, Options{Clock: clock})
					}
					if err == nil {
						t.Fatalf("config %s loaded, want a configuration error (exit %d)", yamlText, *v.Expect.ExitCode)
					}
					for _, want := range v.Expect.StderrContains {
						if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(want)) {
							t.Errorf("config error %q\nwant it to name %q", err, want)
						}
					}
					passed++
					return
				}
				a := authorizers[cacheKey]
				if a == nil {
					cfg, err := Load(yamlText, env(envResolved), Flags{})
					if err != nil {
						t.Fatalf("Load(%s) = %v", yamlText, err)
					}
					if a, err = New(cfg, Options{Clock: clock}); err != nil {
						t.Fatalf("New(%s) = %v", yamlText, err)
					}
					authorizers[cacheKey] = a
				}
				var tok, tok2 string
				if v.Token != nil {
					tok = keys.mint(t, v.Token, now)
				}
				if v.Token2 != nil {
					tok2 = keys.mint(t, v.Token2, now)
				}
				r := buildRequest(v, tok, tok2)
				d := a.Decide(t.Context(), r)
				if diffs := checkVector(v, r, d); len(diffs) > 0 {
					t.Errorf("Decide(%s %s) = %d %s %q:\n  %s", r.Method, r.Path, d.Status, d.Reason, d.Detail, strings.Join(diffs, "\n  "))
					return
				}
				passed++
			})
		}
	}
	t.Logf("conformance vectors: %d of %d passed in-process", passed, total)
}
