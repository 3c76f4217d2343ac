package conformance

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	yamlv2 "go.yaml.in/yaml/v2"
	yamlv3 "go.yaml.in/yaml/v3"
)

// testKeySet is generated key material laid out like shared/conformance/keys.
type testKeySet struct {
	keys *Keys
	pub  map[string]crypto.PublicKey
}

var generated = sync.OnceValues(func() (testKeySet, error) {
	files := map[string][]byte{"hs.secret": []byte("  test-hmac-secret-0123456789\n")}
	pubs := map[string]crypto.PublicKey{}
	add := func(name string, priv crypto.Signer) error {
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return err
		}
		files[name+".key.pem"] = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
		if err != nil {
			return err
		}
		files[name+".pub.pem"] = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
		pubs[name] = priv.Public()
		return nil
	}
	rs, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return testKeySet{}, err
	}
	es, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return testKeySet{}, err
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return testKeySet{}, err
	}
	for name, k := range map[string]crypto.Signer{"rs": rs, "es": es, "ed": ed} {
		if err := add(name, k); err != nil {
			return testKeySet{}, err
		}
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rs"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, rs.Public(), rs)
	if err != nil {
		return testKeySet{}, err
	}
	files["rs.crt.pem"] = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return testKeySet{keys: NewKeys(files), pub: pubs}, nil
})

func testKeys(t *testing.T) testKeySet {
	t.Helper()
	ks, err := generated()
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func TestSubstituterValue(t *testing.T) {
	ks := testKeys(t)
	pub, _ := ks.keys.PublicPEM("rs")
	cert, _ := ks.keys.CertPEM("rs")
	tests := []struct {
		in      string
		want    string // "" when only the error or a file matters
		wantErr bool
	}{
		{in: "@pub:rs", want: pub},
		{in: "@cert:rs", want: cert},
		{in: "@secret:hs", want: "test-hmac-secret-0123456789"},
		{in: "plain text", want: "plain text"},
		{in: "@unknown:rs", want: "@unknown:rs"},
		{in: "@pub:", want: "@pub:"},
		{in: "user@pub:rs", want: "user@pub:rs"},
		{in: "@pub:nope", wantErr: true},
		{in: "@secret:nope", wantErr: true},
		{in: "@file:other", wantErr: true},
		{in: "@jwks:nope", wantErr: true},
	}
	for _, tt := range tests {
		s := &Substituter{Keys: ks.keys, Dir: t.TempDir()}
		got, err := s.Value(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("Value(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && got != tt.want {
			t.Errorf("Value(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSubstituterFiles(t *testing.T) {
	ks := testKeys(t)
	s := &Substituter{Keys: ks.keys, Dir: t.TempDir()}
	missing, err := s.Value("@file:missing")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("@file:missing = %s, which exists (%v)", missing, err)
	}
	invalid, err := s.Value("@file:invalid-json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(invalid)
	if err != nil {
		t.Fatalf("@file:invalid-json: %v", err)
	}
	if json.Valid(b) || len(b) == 0 {
		t.Errorf("@file:invalid-json holds %q, want non-empty non-JSON", b)
	}
}

func TestJWKS(t *testing.T) {
	ks := testKeys(t)
	type entry struct{ kid, alg, kty string }
	tests := []struct {
		spec string
		want []entry
	}{
		{"@jwks:rs,es", []entry{{"rs", "RS256", "RSA"}, {"es", "ES256", "EC"}}},
		{"@jwks:rs=main,ed", []entry{{"main", "RS256", "RSA"}, {"ed", "EdDSA", "OKP"}}},
		{"@jwks:rs,es=", []entry{{"rs", "RS256", "RSA"}, {"", "ES256", "EC"}}},
		{"@jwks-nokid:rs,es", []entry{{"", "RS256", "RSA"}, {"", "ES256", "EC"}}},
	}
	for _, tt := range tests {
		s := &Substituter{Keys: ks.keys, Dir: t.TempDir()}
		path, err := s.Value(tt.spec)
		if err != nil {
			t.Fatalf("Value(%q): %v", tt.spec, err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", tt.spec, err)
		}
		var got []entry
		for _, k := range doc.Keys {
			if k["use"] != "sig" {
				t.Errorf("%s: key %v has use %v, want sig", tt.spec, k["kid"], k["use"])
			}
			if _, private := k["d"]; private {
				t.Errorf("%s: key %v has private material", tt.spec, k["kid"])
			}
			kid, _ := k["kid"].(string)
			got = append(got, entry{kid, k["alg"].(string), k["kty"].(string)})
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: keys = %v, want %v", tt.spec, got, tt.want)
		}
		if _, err := jwk.Parse(b); err != nil {
			t.Errorf("%s: jwk.Parse: %v", tt.spec, err)
		}
	}
}

func TestSubstituterConfig(t *testing.T) {
	ks := testKeys(t)
	pub, _ := ks.keys.PublicPEM("rs")
	in := `{
	 "os_id": "test-os", "leeway_ratio": 1.50, "big": 12345678901234567890,
	 "jwt": {"verification_keys": ["@pub:rs", "@secret:hs"], "validate": false, "issuer": null},
	 "scope_mappings": {"GET /z": ["z:read"], "@pub:rs": [], "GET /a/*": ["a:read"], "GET /m": ["<&>"]}
	}`
	s := &Substituter{Keys: ks.keys, Dir: t.TempDir()}
	out, err := s.Config(json.RawMessage(in))
	if err != nil {
		t.Fatal(err)
	}

	// Same document, values substituted, keys not.
	var got, want any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	wantText := strings.Replace(in, `"@pub:rs", "@secret:hs"`, mustJSON(pub)+`, "test-hmac-secret-0123456789"`, 1)
	if err := json.Unmarshal([]byte(wantText), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Config = %s\nwant the same as %s", out, wantText)
	}
	for _, lit := range []string{"1.50", "12345678901234567890", "<&>"} {
		if !strings.Contains(string(out), lit) {
			t.Errorf("Config output lost the literal %s:\n%s", lit, out)
		}
	}

	// Valid YAML, read back equal, scope_mappings in input order.
	js, err := yamlToJSON(out)
	if err != nil {
		t.Fatalf("YAMLToJSON: %v", err)
	}
	var viaYAML any
	if err := json.Unmarshal(js, &viaYAML); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(viaYAML, want) {
		t.Errorf("read as YAML = %s, want %s", js, wantText)
	}
	var doc yamlv2.MapSlice
	if err := yamlv2.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, item := range doc {
		if item.Key == "scope_mappings" {
			for _, m := range item.Value.(yamlv2.MapSlice) {
				order = append(order, m.Key.(string))
			}
		}
	}
	wantOrder := []string{"GET /z", "@pub:rs", "GET /a/*", "GET /m"}
	if !reflect.DeepEqual(order, wantOrder) {
		t.Errorf("scope_mappings order as YAML (v2) = %q, want %q", order, wantOrder)
	}
	var node yamlv3.Node
	if err := yamlv3.Unmarshal(out, &node); err != nil {
		t.Fatal(err)
	}
	order = nil
	root := node.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "scope_mappings" {
			m := root.Content[i+1]
			for j := 0; j+1 < len(m.Content); j += 2 {
				order = append(order, m.Content[j].Value)
			}
		}
	}
	if !reflect.DeepEqual(order, wantOrder) {
		t.Errorf("scope_mappings order as YAML (v3) = %q, want %q", order, wantOrder)
	}
	var v3doc struct {
		JWT struct {
			Keys []string `yaml:"verification_keys"`
		} `yaml:"jwt"`
	}
	if err := yamlv3.Unmarshal(out, &v3doc); err != nil || len(v3doc.JWT.Keys) != 2 || v3doc.JWT.Keys[0] != pub {
		t.Errorf("jwt.verification_keys as YAML (v3) = %q, %v; want the PEM text first", v3doc.JWT.Keys, err)
	}

	if _, err := s.Config(json.RawMessage(`{"a": 1} {"b": 2}`)); err == nil {
		t.Error("Config of two documents: no error")
	}
	if _, err := s.Config(json.RawMessage(`{"a": "@pub:nope"}`)); err == nil {
		t.Error("Config with an unknown key file: no error")
	}
}

func TestSubstituterEnv(t *testing.T) {
	ks := testKeys(t)
	s := &Substituter{Keys: ks.keys, Dir: t.TempDir()}
	got, err := s.Env(map[string]string{"JWT_VERIFICATION_KEY": "@secret:hs", "OS_SECURITY_KEY": "sk-1"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"JWT_VERIFICATION_KEY": "test-hmac-secret-0123456789", "OS_SECURITY_KEY": "sk-1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Env = %v, want %v", got, want)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// yamlToJSON reads a YAML document and writes it as JSON, as a YAML-reading
// service would see it.
func yamlToJSON(b []byte) ([]byte, error) {
	var v any
	if err := yamlv3.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}
