package envoyfixtures_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"
	gproto "google.golang.org/protobuf/proto"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
	"github.com/agentos-authz/agentos-authz/proto/envoyfixtures"
)

// wantNames is the fixture set the README documents.
var wantNames = []string{
	"cookie-browser", "cors-preflight", "dot-segments-unnormalized", "grpc-call",
	"http1-get-query", "http2-post-pseudo", "istio-sidecar-custom", "percent-encoded-path",
	"raw-header-map", "repeated-headers-joined", "trailing-slash",
}

func TestNames(t *testing.T) {
	if got := envoyfixtures.Names(); !slices.Equal(got, wantNames) {
		t.Errorf("Names() = %q, want %q", got, wantNames)
	}
}

func TestAllParseAndValidate(t *testing.T) {
	all, err := envoyfixtures.All()
	if err != nil {
		t.Fatalf("All() error: %v", err)
	}
	if len(all) != len(wantNames) {
		t.Errorf("All() has %d fixtures, want %d", len(all), len(wantNames))
	}
	for _, name := range wantNames {
		t.Run(name, func(t *testing.T) {
			req := all[name]
			if req == nil {
				t.Fatalf("All()[%q] missing", name)
			}
			if err := req.ValidateAll(); err != nil {
				t.Errorf("Load(%q).ValidateAll() = %v, want nil", name, err)
			}
			h := req.GetAttributes().GetRequest().GetHttp()
			if h == nil {
				t.Fatalf("Load(%q) has no attributes.request.http", name)
			}
			if h.GetMethod() == "" || h.GetPath() == "" {
				t.Errorf("Load(%q): method %q, path %q, want both set", name, h.GetMethod(), h.GetPath())
			}
			// A protojson round trip keeps the request (compared as protobuf,
			// never byte-wise: protojson output is unstable on purpose).
			b, err := protojson.Marshal(req)
			if err != nil {
				t.Fatalf("protojson.Marshal(%q): %v", name, err)
			}
			back := new(authv3.CheckRequest)
			if err := protojson.Unmarshal(b, back); err != nil {
				t.Fatalf("protojson round trip of %q: %v", name, err)
			}
			if !gproto.Equal(req, back) {
				t.Errorf("protojson round trip of %q changed the request", name)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		wantErr string // substring; "" = success
	}{
		{name: "http1-get-query"},
		{name: "http1-get-query.json"},
		{name: "no-such-fixture", wantErr: `no fixture "no-such-fixture" (have: cookie-browser,`},
		{name: "", wantErr: `invalid fixture name ""`},
		{name: "../README.md", wantErr: "invalid fixture name"},
		{name: `a\b`, wantErr: "invalid fixture name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := envoyfixtures.Load(tc.name)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Load(%q) error = %v, want it to contain %q", tc.name, err, tc.wantErr)
				}
				if req != nil {
					t.Errorf("Load(%q) returned a request with an error", tc.name)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load(%q) error: %v", tc.name, err)
			}
			if got := req.GetAttributes().GetRequest().GetHttp().GetPath(); got != "/agents/research-bot?include=tools&limit=5" {
				t.Errorf("Load(%q) path = %q", tc.name, got)
			}
		})
	}
}

func TestLoadReturnsIndependentCopies(t *testing.T) {
	a, err := envoyfixtures.Load("http1-get-query")
	if err != nil {
		t.Fatal(err)
	}
	envoyfixtures.SetToken(a, "first")
	b, err := envoyfixtures.Load("http1-get-query")
	if err != nil {
		t.Fatal(err)
	}
	if got := b.GetAttributes().GetRequest().GetHttp().GetHeaders()["authorization"]; got != "Bearer "+envoyfixtures.Placeholder {
		t.Errorf("second Load authorization = %q, want the placeholder untouched", got)
	}
}

func TestSetToken(t *testing.T) {
	const token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0In0.c2ln"
	tests := []struct {
		name        string
		wantChanged int
		// where the token must appear afterwards
		wantAuth   string // headers["authorization"], "" = not checked
		wantCookie string // substring of headers["cookie"]
		wantRaw    string // header_map raw_value of "authorization"
	}{
		{name: "http1-get-query", wantChanged: 1, wantAuth: "Bearer " + token},
		{name: "http2-post-pseudo", wantChanged: 1, wantAuth: "Bearer " + token},
		{name: "istio-sidecar-custom", wantChanged: 1, wantAuth: "Bearer " + token},
		{name: "trailing-slash", wantChanged: 1, wantAuth: "Bearer " + token},
		{name: "repeated-headers-joined", wantChanged: 1, wantAuth: "Bearer " + token},
		{name: "grpc-call", wantChanged: 1, wantAuth: "Bearer " + token},
		{name: "percent-encoded-path", wantChanged: 1, wantAuth: "Bearer " + token},
		{name: "raw-header-map", wantChanged: 1, wantRaw: "Bearer " + token},
		{name: "cookie-browser", wantChanged: 1, wantCookie: "access_token=" + token + ";"},
		{name: "cors-preflight", wantChanged: 0},
		{name: "dot-segments-unnormalized", wantChanged: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := envoyfixtures.Load(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if got := envoyfixtures.SetToken(req, token); got != tc.wantChanged {
				t.Errorf("SetToken(%s) changed %d values, want %d", tc.name, got, tc.wantChanged)
			}
			wire, err := gproto.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(wire, []byte(envoyfixtures.Placeholder)) {
				t.Errorf("SetToken(%s) left %s in the request", tc.name, envoyfixtures.Placeholder)
			}
			if err := req.ValidateAll(); err != nil {
				t.Errorf("SetToken(%s) made the request invalid: %v", tc.name, err)
			}
			h := req.GetAttributes().GetRequest().GetHttp()
			if tc.wantAuth != "" && h.GetHeaders()["authorization"] != tc.wantAuth {
				t.Errorf("SetToken(%s): authorization = %q, want %q", tc.name, h.GetHeaders()["authorization"], tc.wantAuth)
			}
			if tc.wantCookie != "" && !strings.Contains(h.GetHeaders()["cookie"], tc.wantCookie) {
				t.Errorf("SetToken(%s): cookie = %q, want it to contain %q", tc.name, h.GetHeaders()["cookie"], tc.wantCookie)
			}
			if tc.wantRaw != "" {
				var got []string
				for _, hv := range h.GetHeaderMap().GetHeaders() {
					if hv.GetKey() == "authorization" {
						got = append(got, string(hv.GetRawValue()))
					}
				}
				if !slices.Equal(got, []string{tc.wantRaw}) {
					t.Errorf("SetToken(%s): raw authorization values = %q, want [%q]", tc.name, got, tc.wantRaw)
				}
			}
			if tc.wantChanged == 0 && bytes.Contains(wire, []byte(token)) {
				t.Errorf("SetToken(%s) put the token into a request without a placeholder", tc.name)
			}
		})
	}
}

func TestSetTokenKeepsRawBytes(t *testing.T) {
	req, err := envoyfixtures.Load("raw-header-map")
	if err != nil {
		t.Fatal(err)
	}
	envoyfixtures.SetToken(req, "tok")
	for _, hv := range req.GetAttributes().GetRequest().GetHttp().GetHeaderMap().GetHeaders() {
		if hv.GetKey() == "x-legacy-name" && !bytes.Equal(hv.GetRawValue(), []byte{0x63, 0x61, 0x66, 0xe9}) {
			t.Errorf("SetToken changed x-legacy-name to % x, want 63 61 66 e9", hv.GetRawValue())
		}
	}
}

func TestSetTokenNil(t *testing.T) {
	for _, req := range []*authv3.CheckRequest{nil, {}, {Attributes: &authv3.AttributeContext{}}} {
		if got := envoyfixtures.SetToken(req, "tok"); got != 0 {
			t.Errorf("SetToken(%v) = %d, want 0", req, got)
		}
	}
}

// TestEmbeddedMatchesVendored checks that the embedded files are the
// vendored fixtures as the manifest records them (test/testdata/SHA256SUMS),
// byte for byte, and the shared originals too whenever a shared directory
// sits beside the repository.
func TestEmbeddedMatchesVendored(t *testing.T) {
	root, err := conformance.Root()
	if err != nil {
		t.Fatal(err)
	}
	const dir = "proto/envoy-fixtures/"
	sums, err := conformance.Manifest(root)
	if err != nil {
		t.Fatal(err)
	}
	var recorded []string
	for path := range sums {
		if name, ok := strings.CutPrefix(path, dir); ok && strings.HasSuffix(name, ".json") {
			recorded = append(recorded, strings.TrimSuffix(name, ".json"))
		}
	}
	slices.Sort(recorded)
	if got := envoyfixtures.Names(); !slices.Equal(got, recorded) {
		t.Errorf("embedded fixtures %q, %s records %q", got, conformance.ManifestPath, recorded)
	}
	for _, name := range envoyfixtures.Names() {
		got, err := envoyfixtures.Raw(name)
		if err != nil {
			t.Fatalf("Raw(%q): %v", name, err)
		}
		if sum, want := conformance.Sum(got), sums[dir+name+".json"]; sum != want {
			t.Errorf("embedded %s.json has SHA-256 %s, %s records %q", name, sum, conformance.ManifestPath, want)
		}
	}

	shared, ok, err := conformance.SharedDir()
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Logf("no shared directory beside %s: compared with the manifest only", root)
		return
	}
	sharedDir := filepath.Join(shared, "envoy-fixtures")
	files, err := filepath.Glob(filepath.Join(sharedDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sharedNames []string
	for _, p := range files {
		sharedNames = append(sharedNames, strings.TrimSuffix(filepath.Base(p), ".json"))
	}
	slices.Sort(sharedNames)
	if got := envoyfixtures.Names(); !slices.Equal(got, sharedNames) {
		t.Errorf("embedded fixtures %q, shared has %q", got, sharedNames)
	}
	for _, p := range files {
		name := strings.TrimSuffix(filepath.Base(p), ".json")
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := envoyfixtures.Raw(name)
		if err != nil {
			t.Errorf("Raw(%q): %v", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("embedded %s.json differs from %s: copy it again", name, p)
		}
	}
	for _, doc := range []string{"README.md", "ENVOY-NOTES.md"} {
		want, err := os.ReadFile(filepath.Join(sharedDir, doc))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, dir, doc))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s%s differs from %s: copy it again", dir, doc, filepath.Join(sharedDir, doc))
		}
	}
}

func ExampleSetToken() {
	req, err := envoyfixtures.Load("http1-get-query")
	if err != nil {
		fmt.Println(err)
		return
	}
	n := envoyfixtures.SetToken(req, "my.jwt.token")
	h := req.GetAttributes().GetRequest().GetHttp()
	fmt.Println(n, h.GetMethod(), h.GetPath(), h.GetHeaders()["authorization"])
	// Output: 1 GET /agents/research-bot?include=tools&limit=5 Bearer my.jwt.token
}
