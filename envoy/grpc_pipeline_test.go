package envoy

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.uber.org/zap/zaptest"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/proto/envoyfixtures"
)

// securityKey configures the real authorizer in its simplest mode (the
// deprecated static key, docs/CONTRACT.md §7), which needs no JWT machinery.
const securityKey = "fixture-static-key-0123456789"

func newKeyAuthorizer(t *testing.T) *authz.Authorizer {
	t.Helper()
	cfg, err := authz.Load([]byte("security_key: "+securityKey+"\n"), nil, authz.LoadOptions{})
	if err != nil {
		t.Fatalf("authz.Load: %v", err)
	}
	a, err := authz.New(cfg, authz.Options{Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatalf("authz.New: %v", err)
	}
	return a
}

// applyOK does to the inbound headers what Envoy does with an ok_response
// (ENVOY-NOTES §3): set (overwrite) every header, then remove the listed ones.
func applyOK(in map[string]string, ok *authv3.OkHttpResponse) map[string]string {
	out := maps.Clone(in)
	for _, h := range ok.GetHeaders() {
		out[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	for _, k := range ok.GetHeadersToRemove() {
		delete(out, k)
	}
	return out
}

// TestFixturesThroughAuthorizer sends every fixture through the real
// pipeline behind the adapter and checks the rendered reply, including
// what the upstream would see after Envoy applies it.
func TestFixturesThroughAuthorizer(t *testing.T) {
	tests := []struct {
		fixture    string
		wantStatus int    // HTTP status: 200 allow
		wantDetail string // denies only
		wantAuth   string // x-agentos-auth upstream, allows only
		wantCORS   bool   // deny carries access-control-allow-origin
	}{
		{fixture: "http1-get-query", wantStatus: 200, wantAuth: "security-key"},
		{fixture: "http2-post-pseudo", wantStatus: 200, wantAuth: "security-key"},
		{fixture: "raw-header-map", wantStatus: 200, wantAuth: "security-key"},
		{fixture: "repeated-headers-joined", wantStatus: 200, wantAuth: "security-key"},
		{fixture: "istio-sidecar-custom", wantStatus: 200, wantAuth: "security-key"},
		{fixture: "grpc-call", wantStatus: 200, wantAuth: "security-key"},
		{fixture: "trailing-slash", wantStatus: 200, wantAuth: "security-key"},
		{fixture: "cors-preflight", wantStatus: 200, wantAuth: "none"},
		{fixture: "cookie-browser", wantStatus: 401, wantDetail: "Authorization header required", wantCORS: true},
		{fixture: "percent-encoded-path", wantStatus: 400, wantDetail: "Malformed request path"},
		{fixture: "dot-segments-unnormalized", wantStatus: 400, wantDetail: "Malformed request path"},
	}
	srv := NewServer(newKeyAuthorizer(t))
	covered := map[string]bool{}
	for _, tc := range tests {
		covered[tc.fixture] = true
		t.Run(tc.fixture, func(t *testing.T) {
			cr, err := envoyfixtures.Load(tc.fixture)
			if err != nil {
				t.Fatalf("fixture %s: %v", tc.fixture, err)
			}
			envoyfixtures.SetToken(cr, securityKey)
			resp, err := srv.Check(t.Context(), cr)
			if err != nil {
				t.Fatalf("Check(%s) error = %v", tc.fixture, err)
			}
			d := authz.Decision{Status: tc.wantStatus}
			checkResponseInvariants(t, &d, resp)
			if tc.wantStatus != 200 {
				dr := resp.GetDeniedResponse()
				if got := int(dr.GetStatus().GetCode()); got != tc.wantStatus {
					t.Fatalf("Check(%s) = HTTP %d, want %d", tc.fixture, got, tc.wantStatus)
				}
				var body struct{ Detail string }
				if err := json.Unmarshal([]byte(dr.GetBody()), &body); err != nil || body.Detail != tc.wantDetail {
					t.Errorf("Check(%s) detail = %q (%v), want %q", tc.fixture, body.Detail, err, tc.wantDetail)
				}
				cors := false
				for _, h := range dr.GetHeaders() {
					cors = cors || h.GetHeader().GetKey() == "access-control-allow-origin"
				}
				if cors != tc.wantCORS {
					t.Errorf("Check(%s) CORS header present = %v, want %v", tc.fixture, cors, tc.wantCORS)
				}
				return
			}
			ok := resp.GetOkResponse()
			if ok == nil {
				t.Fatalf("Check(%s) = %v, want an allow", tc.fixture, resp)
			}
			in := FromCheckRequest(cr).Headers
			up := applyOK(in, ok)
			if up["x-agentos-auth"] != tc.wantAuth {
				t.Errorf("upstream x-agentos-auth = %q, want %q", up["x-agentos-auth"], tc.wantAuth)
			}
			set := map[string]string{}
			for _, h := range ok.GetHeaders() {
				set[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
			}
			for k, v := range up {
				if strings.HasPrefix(k, "x-agentos-") && set[k] != v {
					t.Errorf("client-sent %s = %q reaches the upstream", k, v)
				}
			}
			md := resp.GetDynamicMetadata().GetFields()
			if len(md) != len(set) {
				t.Errorf("dynamic metadata has %d fields, upstream headers %d", len(md), len(set))
			}
			for k, v := range set {
				if md[k].GetStringValue() != v {
					t.Errorf("dynamic metadata %s = %v, want %q", k, md[k], v)
				}
			}
		})
	}
	for _, name := range envoyfixtures.Names() {
		if !covered[name] {
			t.Errorf("fixture %s has no pipeline case", name)
		}
	}
}

// TestGarbageThroughAuthorizer: requests without HTTP attributes reach the
// real pipeline and come back 400 Malformed check request, never a panic
// or an RPC error.
func TestGarbageThroughAuthorizer(t *testing.T) {
	srv := NewServer(newKeyAuthorizer(t))
	for name, cr := range map[string]*authv3.CheckRequest{
		"nil":                  nil,
		"empty":                {},
		"empty attributes":     {Attributes: &authv3.AttributeContext{}},
		"request without http": {Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{}}},
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := srv.Check(t.Context(), cr)
			if err != nil {
				t.Fatalf("Check(%s) error = %v", name, err)
			}
			dr := resp.GetDeniedResponse()
			if dr.GetStatus().GetCode() != 400 || dr.GetBody() != `{"detail": "Malformed check request"}` {
				t.Errorf("Check(%s) = %d %s, want 400 Malformed check request", name, dr.GetStatus().GetCode(), dr.GetBody())
			}
			checkResponseInvariants(t, &authz.Decision{Status: 400}, resp)
		})
	}
}
