package envoy

import (
	"maps"
	"net/textproto"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/agentos-authz/agentos-authz/authz"
)

// clientLines are the header lines a client sent for the request fixture
// cr records, in the order Envoy would have received them (header_map
// order; sorted by name for the headers map), with names in the client's
// canonical case: every line but the pseudo-headers and the connection
// manager's own x-request-id and x-forwarded-proto, which NewCheckRequest
// adds, and but the names in drop.
func clientLines(cr *authv3.CheckRequest, drop ...string) []authz.Header {
	skip := func(name string) bool {
		return strings.HasPrefix(name, ":") || name == "x-request-id" || name == "x-forwarded-proto" ||
			strings.Contains(" "+strings.Join(drop, " ")+" ", " "+name+" ")
	}
	h := cr.GetAttributes().GetRequest().GetHttp()
	var out []authz.Header
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		if !skip(hv.GetKey()) {
			out = append(out, authz.Header{Name: textproto.CanonicalMIMEHeaderKey(hv.GetKey()), Value: string(hv.GetRawValue())})
		}
	}
	names := make([]string, 0, len(h.GetHeaders()))
	for k := range h.GetHeaders() {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !skip(k) {
			out = append(out, authz.Header{Name: textproto.CanonicalMIMEHeaderKey(k), Value: h.GetHeaders()[k]})
		}
	}
	return out
}

// fixtureRequestID is the x-request-id a fixture carries, from either shape.
func fixtureRequestID(cr *authv3.CheckRequest) string {
	h := cr.GetAttributes().GetRequest().GetHttp()
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		if hv.GetKey() == "x-request-id" {
			return string(hv.GetRawValue())
		}
	}
	return h.GetHeaders()["x-request-id"]
}

// TestNewCheckRequestFixtures rebuilds every Envoy fixture from what the
// client sent (method, target, host, scheme, protocol, its own header
// lines, the credential) and checks that the built CheckRequest decodes
// through FromCheckRequest to the same authz.Request as the fixture Envoy
// sent: the helper check, authz-bench and the policy API use is Envoy's
// shape, not an approximation of it.
func TestNewCheckRequestFixtures(t *testing.T) {
	cases := []struct {
		fixture string
		// want is the fixture whose decoding the built request must equal
		// ("" means fixture): the raw header map has no default-mode
		// builder; its lines, built in default mode, are the joined fixture.
		want string
		spec RequestSpec
		// credential is the fixture's header the spec's Token replaces
		// (NewCheckRequest also adds the default access_token cookie);
		// "" means the credential, if any, is among the client's lines.
		credential string
	}{
		{fixture: "http1-get-query", credential: "authorization",
			spec: RequestSpec{Path: "/agents/research-bot?include=tools&limit=5", Host: "agentos.example.com", ClientAddr: "203.0.113.7", Token: testToken}},
		{fixture: "http2-post-pseudo", credential: "authorization",
			spec: RequestSpec{Method: "POST", Path: "/agents/research-bot/runs", Host: "agentos.example.com", Scheme: "https", Protocol: "HTTP/2", ClientAddr: "198.51.100.23", Token: testToken}},
		{fixture: "istio-sidecar-custom", credential: "authorization",
			spec: RequestSpec{Method: "POST", Path: "/teams/support/runs", Host: "agentos.agents.svc.cluster.local:8000", ClientAddr: "10.244.1.17", Token: testToken}},
		{fixture: "grpc-call", credential: "authorization",
			spec: RequestSpec{Method: "POST", Path: "/agentos.v1.AgentService/RunAgent", Host: "agentos-grpc.internal:8080", Protocol: "HTTP/2", ClientAddr: "10.0.7.9", Token: testToken}},
		{fixture: "percent-encoded-path", credential: "authorization",
			spec: RequestSpec{Method: "DELETE", Path: "/agents/sales%20bot%2Fv2?force=true&note=a%26b", Host: "agentos.example.com", ClientAddr: "203.0.113.7", Token: testToken}},
		{fixture: "trailing-slash", credential: "authorization",
			spec: RequestSpec{Method: "GET", Path: "/workflows/?limit=10", ClientAddr: "203.0.113.7", Token: testToken,
				// An HTTP/1 Host line: Envoy's codec makes it :authority.
				Headers: []authz.Header{{Name: "Host", Value: "agentos.example.com"}}}},
		// The token in the client's own cookie line, no authorization header.
		{fixture: "cookie-browser",
			spec: RequestSpec{Path: "/sessions?type=agent&limit=20", Host: "agentos.example.com", Scheme: "https", Protocol: "HTTP/2", ClientAddr: "192.0.2.44"}},
		{fixture: "cors-preflight",
			spec: RequestSpec{Method: "OPTIONS", Path: "/agents/research-bot/runs", Host: "agentos.example.com", Scheme: "https", Protocol: "HTTP/2", ClientAddr: "192.0.2.44"}},
		{fixture: "dot-segments-unnormalized",
			spec: RequestSpec{Path: "/health/../config", Host: "agentos.example.com", ClientAddr: "203.0.113.7"}},
		{fixture: "repeated-headers-joined",
			spec: RequestSpec{Path: "/teams?limit=10", Host: "agentos.example.com", ClientAddr: "203.0.113.7"}},
		// Repeated lines joined in order, the non-UTF-8 byte of
		// x-legacy-name replaced by "!": the default-mode fixture.
		{fixture: "raw-header-map", want: "repeated-headers-joined",
			spec: RequestSpec{Path: "/teams?limit=10", Host: "agentos.example.com", ClientAddr: "203.0.113.7"}},
	}
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.fixture] = true
		t.Run(tc.fixture, func(t *testing.T) {
			fx := loadFixture(t, tc.fixture)
			spec := tc.spec
			spec.Headers = append(spec.Headers, clientLines(fx, tc.credential)...)
			spec.RequestID = fixtureRequestID(fx)
			built := NewCheckRequest(spec)
			if err := built.ValidateAll(); err != nil {
				t.Errorf("NewCheckRequest(%s): ValidateAll() = %v", tc.fixture, err)
			}

			wantFx := fx
			if tc.want != "" {
				wantFx = loadFixture(t, tc.want)
			}
			want := FromCheckRequest(wantFx)
			want.Headers = maps.Clone(want.Headers)
			if spec.Token != "" {
				want.Headers["cookie"] = "access_token=" + testToken
			}
			if got := FromCheckRequest(built); !reflect.DeepEqual(got, want) {
				t.Errorf("FromCheckRequest(NewCheckRequest(%s)) =\n%#v\nwant\n%#v", tc.fixture, got, want)
			}
			gh, wh := built.GetAttributes().GetRequest().GetHttp(), wantFx.GetAttributes().GetRequest().GetHttp()
			if gh.GetHost() != wh.GetHost() || gh.GetScheme() != wh.GetScheme() || gh.GetProtocol() != wh.GetProtocol() ||
				gh.GetMethod() != wh.GetMethod() || gh.GetPath() != wh.GetPath() {
				t.Errorf("NewCheckRequest(%s) attributes = %s %s %s://%s %s, want %s %s %s://%s %s", tc.fixture,
					gh.GetMethod(), gh.GetPath(), gh.GetScheme(), gh.GetHost(), gh.GetProtocol(),
					wh.GetMethod(), wh.GetPath(), wh.GetScheme(), wh.GetHost(), wh.GetProtocol())
			}
			if built.GetAttributes().GetRequest().GetTime() == nil {
				t.Errorf("NewCheckRequest(%s) has no request.time; Envoy always sets it", tc.fixture)
			}
		})
	}
	for _, name := range fixtureNames(t) {
		if !covered[name] {
			t.Errorf("fixture %s has no case: add what its client sent", name)
		}
	}
}

// TestNewCheckRequest: defaults, the credential's placement, the method's
// case, the joins and the pseudo-headers' precedence, one rule per case.
func TestNewCheckRequest(t *testing.T) {
	custom, err := authz.Load([]byte("security_key: k\njwt: {header: X-Auth, cookie: sid}\n"), nil, authz.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		spec RequestSpec
		// want are headers the built request must hold, with the http
		// attributes: method, path, host, scheme, protocol.
		want                                  map[string]string
		method, path, host, scheme, protocol  string
		absent                                []string
		requestIDRandom, hasSource, timeExact bool
	}{
		{name: "zero value is GET / on localhost",
			want:   map[string]string{":method": "GET", ":path": "/", ":authority": "localhost", ":scheme": "http", "x-forwarded-proto": "http"},
			method: "GET", path: "/", host: "localhost", scheme: "http", protocol: "HTTP/1.1",
			absent: []string{"authorization", "cookie", "host"}, requestIDRandom: true},
		{name: "method case kept: options is no OPTIONS",
			spec:   RequestSpec{Method: "options", Path: "/agents?limit=5&q=a%20b", RequestID: "r1"},
			want:   map[string]string{":method": "options", ":path": "/agents?limit=5&q=a%20b", "x-request-id": "r1"},
			method: "options", path: "/agents?limit=5&q=a%20b", host: "localhost", scheme: "http", protocol: "HTTP/1.1"},
		{name: "token at the defaults without a configuration",
			spec:   RequestSpec{Token: "tok", Headers: []authz.Header{{Name: "Cookie", Value: "theme=dark"}}},
			want:   map[string]string{"authorization": "Bearer tok", "cookie": "theme=dark; access_token=tok"},
			method: "GET", path: "/", host: "localhost", scheme: "http", protocol: "HTTP/1.1", requestIDRandom: true},
		{name: "token where the configuration looks",
			spec:   RequestSpec{Token: "tok", Config: custom},
			want:   map[string]string{"x-auth": "Bearer tok", "cookie": "sid=tok"},
			method: "GET", path: "/", host: "localhost", scheme: "http", protocol: "HTTP/1.1",
			absent: []string{"authorization"}, requestIDRandom: true},
		{name: "repeats joined, cookies with a semicolon, names lower-cased",
			spec: RequestSpec{Headers: []authz.Header{
				{Name: "X-Tag", Value: ""}, {Name: "x-tag", Value: "blue"}, {Name: "X-TAG", Value: "green"},
				{Name: "Cookie", Value: "a=1"}, {Name: "cookie", Value: "b=2"},
				{Name: "X-Legacy", Value: "caf\xe9"}, {Name: "", Value: "nameless"},
			}},
			want:   map[string]string{"x-tag": ",blue,green", "cookie": "a=1; b=2", "x-legacy": "caf!"},
			method: "GET", path: "/", host: "localhost", scheme: "http", protocol: "HTTP/1.1",
			absent: []string{""}, requestIDRandom: true},
		{name: "host line becomes :authority; client's scheme, request id and forwarded proto kept",
			spec: RequestSpec{Headers: []authz.Header{
				{Name: "Host", Value: "api.example:8443"}, {Name: ":scheme", Value: "https"},
				{Name: "X-Request-Id", Value: "client-id"}, {Name: "X-Forwarded-Proto", Value: "http"},
			}, RequestID: "unused"},
			want:   map[string]string{":authority": "api.example:8443", ":scheme": "https", "x-request-id": "client-id", "x-forwarded-proto": "http"},
			method: "GET", path: "/", host: "api.example:8443", scheme: "https", protocol: "HTTP/1.1",
			absent: []string{"host"}},
		{name: "spec fields beat the client's pseudo-header lines",
			spec: RequestSpec{Method: "DELETE", Path: "/agents/x", Host: "h.example", Scheme: "https", Protocol: "HTTP/2",
				Headers:   []authz.Header{{Name: ":method", Value: "GET"}, {Name: ":path", Value: "/other"}, {Name: ":authority", Value: "other"}, {Name: ":scheme", Value: "http"}},
				RequestID: "r2", ClientAddr: "192.0.2.1", Time: at},
			want:   map[string]string{":method": "DELETE", ":path": "/agents/x", ":authority": "h.example", ":scheme": "https", "x-forwarded-proto": "https", "x-request-id": "r2"},
			method: "DELETE", path: "/agents/x", host: "h.example", scheme: "https", protocol: "HTTP/2",
			hasSource: true, timeExact: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cr := NewCheckRequest(tc.spec)
			if err := cr.ValidateAll(); err != nil {
				t.Errorf("NewCheckRequest(%+v): ValidateAll() = %v", tc.spec, err)
			}
			h := cr.GetAttributes().GetRequest().GetHttp()
			hs := h.GetHeaders()
			for k, v := range tc.want {
				if got, ok := hs[k]; !ok || got != v {
					t.Errorf("NewCheckRequest(%+v) header %q = %q (present %v), want %q", tc.spec, k, got, ok, v)
				}
			}
			for _, k := range tc.absent {
				if v, ok := hs[k]; ok {
					t.Errorf("NewCheckRequest(%+v) has header %q = %q, want none", tc.spec, k, v)
				}
			}
			if h.GetMethod() != tc.method || h.GetPath() != tc.path || h.GetHost() != tc.host ||
				h.GetScheme() != tc.scheme || h.GetProtocol() != tc.protocol {
				t.Errorf("NewCheckRequest(%+v) attributes = %q %q %q %q %q, want %q %q %q %q %q", tc.spec,
					h.GetMethod(), h.GetPath(), h.GetHost(), h.GetScheme(), h.GetProtocol(),
					tc.method, tc.path, tc.host, tc.scheme, tc.protocol)
			}
			for _, k := range []string{":method", ":path", ":authority", ":scheme"} {
				want := map[string]string{":method": h.GetMethod(), ":path": h.GetPath(), ":authority": h.GetHost(), ":scheme": h.GetScheme()}[k]
				if hs[k] != want {
					t.Errorf("NewCheckRequest(%+v) %s = %q, attribute says %q", tc.spec, k, hs[k], want)
				}
			}
			if tc.requestIDRandom && !uuidV4.MatchString(hs["x-request-id"]) {
				t.Errorf("NewCheckRequest(%+v) x-request-id = %q, want a random UUID", tc.spec, hs["x-request-id"])
			}
			src := cr.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress()
			if tc.hasSource != (src != "") || (tc.hasSource && src != tc.spec.ClientAddr) {
				t.Errorf("NewCheckRequest(%+v) source address = %q, want %q", tc.spec, src, tc.spec.ClientAddr)
			}
			if got := cr.GetAttributes().GetRequest().GetTime(); got == nil || tc.timeExact && !got.AsTime().Equal(at) {
				t.Errorf("NewCheckRequest(%+v) request.time = %v, want %v (or now)", tc.spec, got, at)
			}
			if r := FromCheckRequest(cr); r.Malformed || r.Method != tc.method || r.Path != tc.path || r.ClientAddr != tc.spec.ClientAddr {
				t.Errorf("FromCheckRequest(NewCheckRequest(%+v)) = %+v", tc.spec, r)
			}
		})
	}
	a, b := NewCheckRequest(RequestSpec{}), NewCheckRequest(RequestSpec{})
	if a.GetAttributes().GetRequest().GetHttp().GetHeaders()["x-request-id"] == b.GetAttributes().GetRequest().GetHttp().GetHeaders()["x-request-id"] {
		t.Error("two NewCheckRequest calls share an x-request-id, want a fresh one each")
	}
}

// envoyRequest is the CheckRequest Envoy sends for method and path with
// these client headers: the envoy tests of Server, metrics, tracing and the
// HTTP mode's agreement build ordinary requests this way, the one way
// (NewCheckRequest); hand-built ones remain only where a test needs a shape
// Envoy never sends (partial, upper-case keys, no pseudo-headers).
func envoyRequest(method, path string, headers map[string]string) *authv3.CheckRequest {
	return NewCheckRequest(RequestSpec{Method: method, Path: path, Headers: headerLines(headers), RequestID: "test-request"})
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
