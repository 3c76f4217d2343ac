package envoy

import (
	"maps"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/proto/envoyfixtures"
)

// testToken replaces the fixtures' ${TOKEN} placeholder; the adapter never
// parses it, so it need not be a real JWT.
const testToken = "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"

// loadFixture parses one fixture (the module's verbatim copy of
// shared/envoy-fixtures, embedded by package proto) strictly: unknown fields
// are errors. It substitutes the token placeholder, also inside raw header
// bytes.
func loadFixture(t testing.TB, name string) *authv3.CheckRequest {
	t.Helper()
	data, err := envoyfixtures.Raw(name)
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	cr := &authv3.CheckRequest{}
	if err := protojson.Unmarshal(data, cr); err != nil {
		t.Fatalf("protojson.Unmarshal(%s): %v", name, err)
	}
	envoyfixtures.SetToken(cr, testToken)
	return cr
}

func fixtureNames(t *testing.T) []string {
	t.Helper()
	names := envoyfixtures.Names()
	if len(names) == 0 {
		t.Fatal("no Envoy fixtures embedded")
	}
	return names
}

// TestFixturesWellFormed checks what the fixtures README asks of every
// file: it validates, path == :path, host == :authority, exactly one of
// headers / header_map, lower-case keys, and a protojson round trip.
func TestFixturesWellFormed(t *testing.T) {
	for _, name := range fixtureNames(t) {
		t.Run(name, func(t *testing.T) {
			cr := loadFixture(t, name)
			if err := cr.ValidateAll(); err != nil {
				t.Errorf("ValidateAll() = %v", err)
			}
			h := cr.GetAttributes().GetRequest().GetHttp()
			if h == nil {
				t.Fatal("no attributes.request.http")
			}
			hasMap, hasRaw := len(h.GetHeaders()) > 0, len(h.GetHeaderMap().GetHeaders()) > 0
			if hasMap == hasRaw {
				t.Fatalf("headers set = %v, header_map set = %v; want exactly one", hasMap, hasRaw)
			}
			lines := map[string][]string{}
			for k, v := range h.GetHeaders() {
				lines[k] = append(lines[k], v)
			}
			for _, hv := range h.GetHeaderMap().GetHeaders() {
				if hv.GetValue() != "" {
					t.Errorf("header_map %q uses value, want raw_value only", hv.GetKey())
				}
				lines[hv.GetKey()] = append(lines[hv.GetKey()], string(hv.GetRawValue()))
			}
			for k := range lines {
				if k != strings.ToLower(k) {
					t.Errorf("header key %q is not lower-case", k)
				}
			}
			if _, ok := lines["host"]; ok {
				t.Error("a host header is present; Envoy turns it into :authority")
			}
			if got := lines[":path"]; len(got) != 1 || got[0] != h.GetPath() {
				t.Errorf(":path = %q, want [%q] (http.path)", got, h.GetPath())
			}
			if got := lines[":authority"]; len(got) != 1 || got[0] != h.GetHost() {
				t.Errorf(":authority = %q, want [%q] (http.host)", got, h.GetHost())
			}
			if got := lines[":method"]; len(got) != 1 || got[0] != h.GetMethod() {
				t.Errorf(":method = %q, want [%q] (http.method)", got, h.GetMethod())
			}
			if h.GetQuery() != "" || h.GetFragment() != "" {
				t.Errorf("query = %q, fragment = %q; Envoy never sets them", h.GetQuery(), h.GetFragment())
			}
			out, err := protojson.Marshal(cr)
			if err != nil {
				t.Fatalf("protojson.Marshal: %v", err)
			}
			back := &authv3.CheckRequest{}
			if err := protojson.Unmarshal(out, back); err != nil {
				t.Fatalf("protojson.Unmarshal(round trip): %v", err)
			}
			if !proto.Equal(cr, back) {
				t.Error("protojson round trip changed the request")
			}
		})
	}
}

// TestFromCheckRequestFixtures checks each fixture's translation.
func TestFromCheckRequestFixtures(t *testing.T) {
	bearer := "Bearer " + testToken
	tests := []struct {
		file   string
		method string
		path   string
		// headers that must be present with these exact values
		headers map[string]string
		// headers that must be absent
		absent []string
	}{
		{
			file: "http1-get-query", method: "GET", path: "/agents/research-bot?include=tools&limit=5",
			headers: map[string]string{"authorization": bearer, ":authority": "agentos.example.com", "x-request-id": "5b0c7e0e-3f4a-4a7e-9a51-0f6c2f1d8e21"},
			absent:  []string{"host"},
		},
		{
			file: "http2-post-pseudo", method: "POST", path: "/agents/research-bot/runs",
			headers: map[string]string{"authorization": bearer, ":scheme": "https", "x-envoy-auth-partial-body": "false"},
		},
		{
			file: "raw-header-map", method: "GET", path: "/teams?limit=10",
			headers: map[string]string{
				"authorization":     bearer,
				"x-agentos-user-id": "admin,root",
				"x-agentos-scopes":  "agent_os:admin",
				"x-trace-tag":       "blue,green",
				"x-legacy-name":     "caf\xe9", // raw bytes kept, not sanitised
				":path":             "/teams?limit=10",
			},
		},
		{
			file: "repeated-headers-joined", method: "GET", path: "/teams?limit=10",
			headers: map[string]string{"authorization": bearer, "x-agentos-user-id": "admin,root", "x-trace-tag": "blue,green", "x-legacy-name": "caf!"},
		},
		{
			file: "cookie-browser", method: "GET", path: "/sessions?type=agent&limit=20",
			headers: map[string]string{
				"cookie": "theme=dark; access_token=" + testToken + "; csrftoken=Qm9yZWFsaXM",
				"origin": "https://app.example.com",
			},
			absent: []string{"authorization"},
		},
		{
			file: "istio-sidecar-custom", method: "POST", path: "/teams/support/runs",
			headers: map[string]string{"authorization": bearer, "x-envoy-attempt-count": "1"},
		},
		{
			file: "grpc-call", method: "POST", path: "/agentos.v1.AgentService/RunAgent",
			headers: map[string]string{"authorization": bearer, "content-type": "application/grpc", "te": "trailers"},
		},
		{
			file: "percent-encoded-path", method: "DELETE", path: "/agents/sales%20bot%2Fv2?force=true&note=a%26b",
			headers: map[string]string{"authorization": bearer},
		},
		{
			file: "trailing-slash", method: "GET", path: "/workflows/?limit=10",
			headers: map[string]string{"authorization": bearer},
		},
		{
			file: "dot-segments-unnormalized", method: "GET", path: "/health/../config",
			absent: []string{"authorization"},
		},
		{
			file: "cors-preflight", method: "OPTIONS", path: "/agents/research-bot/runs",
			headers: map[string]string{"origin": "https://app.example.com", "access-control-request-method": "POST"},
			absent:  []string{"authorization"},
		},
	}
	covered := map[string]bool{}
	for _, tc := range tests {
		covered[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			cr := loadFixture(t, tc.file)
			r := FromCheckRequest(cr)
			if r.Malformed {
				t.Fatalf("FromCheckRequest(%s).Malformed = true", tc.file)
			}
			if r.Method != tc.method || r.Path != tc.path {
				t.Errorf("FromCheckRequest(%s) = %s %q, want %s %q", tc.file, r.Method, r.Path, tc.method, tc.path)
			}
			for k, want := range tc.headers {
				if got, ok := r.Headers[k]; !ok || got != want {
					t.Errorf("Headers[%q] = %q (present %v), want %q", k, got, ok, want)
				}
			}
			for _, k := range tc.absent {
				if got, ok := r.Headers[k]; ok {
					t.Errorf("Headers[%q] = %q, want absent", k, got)
				}
			}
			for k := range r.Headers {
				if k != strings.ToLower(k) {
					t.Errorf("header key %q is not lower-case", k)
				}
			}
		})
	}
	for _, name := range fixtureNames(t) {
		if !covered[name] {
			t.Errorf("fixture %s has no translation case", name)
		}
	}
}

// TestRawHeaderMapMatchesJoined: the raw-header-map fixture and the
// repeated-headers-joined fixture are the same request in Envoy's two
// modes; translated, they differ only where default mode sanitised a
// non-UTF-8 byte to "!".
func TestRawHeaderMapMatchesJoined(t *testing.T) {
	raw := FromCheckRequest(loadFixture(t, "raw-header-map")).Headers
	joined := FromCheckRequest(loadFixture(t, "repeated-headers-joined")).Headers
	raw = maps.Clone(raw)
	raw["x-legacy-name"] = strings.ReplaceAll(raw["x-legacy-name"], "\xe9", "!")
	if !maps.Equal(raw, joined) {
		t.Errorf("raw header map translation = %q,\nwant (joined mode) %q", raw, joined)
	}
}

// TestFromCheckRequestSharesEnvoyMap locks the no-copy path: Envoy's map
// (lower-case keys) is used as is.
func TestFromCheckRequestSharesEnvoyMap(t *testing.T) {
	cr := loadFixture(t, "http1-get-query")
	src := cr.GetAttributes().GetRequest().GetHttp().GetHeaders()
	r := FromCheckRequest(cr)
	src["x-probe"] = "1"
	if r.Headers["x-probe"] != "1" {
		t.Error("FromCheckRequest copied Envoy's lower-case header map")
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = FromCheckRequest(cr) }); allocs != 0 {
		t.Errorf("FromCheckRequest(headers map) allocs = %v, want 0", allocs)
	}
}

func httpRequest(h *authv3.AttributeContext_HttpRequest) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: h},
	}}
}

func TestFromCheckRequest(t *testing.T) {
	tests := []struct {
		name string
		in   *authv3.CheckRequest
		want authz.Request
	}{
		{name: "nil request", in: nil, want: authz.Request{Malformed: true}},
		{name: "empty request", in: &authv3.CheckRequest{}, want: authz.Request{Malformed: true}},
		{
			name: "attributes without request",
			in:   &authv3.CheckRequest{Attributes: &authv3.AttributeContext{}},
			want: authz.Request{Malformed: true},
		},
		{
			name: "request without http",
			in: &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
				Request: &authv3.AttributeContext_Request{},
			}},
			want: authz.Request{Malformed: true},
		},
		{
			name: "empty http is not malformed here",
			in:   httpRequest(&authv3.AttributeContext_HttpRequest{}),
			want: authz.Request{},
		},
		{
			name: "mixed-case keys are lower-cased, case collisions joined",
			in: httpRequest(&authv3.AttributeContext_HttpRequest{
				Method: "GET", Path: "/agents",
				Headers: map[string]string{"Authorization": "Bearer a", "X-Tag": "1", "x-tag": "2", "accept": "*/*"},
			}),
			want: authz.Request{Method: "GET", Path: "/agents", Headers: map[string]string{
				"authorization": "Bearer a", "x-tag": "1,2", "accept": "*/*",
			}},
		},
		{
			name: "header map: repeats joined in order, empty values kept, value or raw_value",
			in: httpRequest(&authv3.AttributeContext_HttpRequest{
				Method: "POST", Path: "/teams/t/runs?x=1",
				HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
					{Key: "X-Dup", RawValue: []byte("")},
					{Key: "x-dup", RawValue: []byte("foo")},
					{Key: "x-dup", Value: "bar"},
					{Key: "", RawValue: []byte("dropped")},
					nil,
					{Key: "x-bin", RawValue: []byte{0xff, 0x00, 'a'}},
				}},
			}),
			want: authz.Request{Method: "POST", Path: "/teams/t/runs?x=1", Headers: map[string]string{
				"x-dup": ",foo,bar", "x-bin": "\xff\x00a",
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := FromCheckRequest(tc.in)
			if got.Malformed != tc.want.Malformed || got.Method != tc.want.Method || got.Path != tc.want.Path ||
				!maps.Equal(got.Headers, tc.want.Headers) {
				t.Errorf("FromCheckRequest() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func BenchmarkFromCheckRequest(b *testing.B) {
	for _, name := range []string{"http1-get-query", "raw-header-map"} {
		cr := loadFixture(b, name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				requestSink = FromCheckRequest(cr)
			}
		})
	}
}

var requestSink authz.Request
