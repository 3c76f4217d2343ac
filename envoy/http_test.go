package envoy

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc/codes"

	"github.com/agentos-authz/agentos-authz/authz"
)

// httpSecret is the HS256 secret of the HTTP-mode tests' authorizer.
const httpSecret = "http-mode-test-secret-0123456789abcdef"

// newJWTAuthorizer is the real pipeline with an HS256 key; extra YAML is
// appended to the configuration.
func newJWTAuthorizer(t *testing.T, extra string) *authz.Authorizer {
	t.Helper()
	text := "os_id: test-os\ncors_allowed_origins: [https://app.example.com]\n" +
		"jwt:\n  algorithms: [HS256]\n  verification_keys: [\"" + httpSecret + "\"]\n" + extra
	cfg, err := authz.Load([]byte(text), nil, authz.LoadOptions{})
	if err != nil {
		t.Fatalf("authz.Load: %v", err)
	}
	a, err := authz.New(cfg, authz.Options{Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatalf("authz.New: %v", err)
	}
	return a
}

// mintHS signs a token for sub with scopes, valid for an hour.
func mintHS(t *testing.T, sub string, scopes ...string) string {
	t.Helper()
	tok, err := jwt.NewBuilder().Subject(sub).Audience([]string{"test-os"}).
		IssuedAt(time.Now()).Expiration(time.Now().Add(time.Hour)).
		Claim("scopes", scopes).Claim("session_id", "s-1").Build()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256, []byte(httpSecret)))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

func TestFromHTTPRequest(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		target     string
		prefix     string
		header     [][2]string // in order, repeats allowed
		want       authz.Request
		wantHeader map[string]string // a subset of the translated headers
	}{
		{
			name: "envoy: the request is the check", method: "GET", target: "/agents?limit=5",
			want: authz.Request{Method: "GET", Path: "/agents?limit=5"},
		},
		{
			name: "envoy: the raw target, undecoded", method: "DELETE", target: "/agents/a%2Fb",
			want: authz.Request{Method: "DELETE", Path: "/agents/a%2Fb"},
		},
		{
			name: "envoy: prefix stripped", method: "POST", target: "/authz/agents/web/runs?x=1", prefix: "/authz",
			want: authz.Request{Method: "POST", Path: "/agents/web/runs?x=1"},
		},
		{
			name: "envoy: prefix stripped from the root", method: "GET", target: "/authz/", prefix: "/authz",
			want: authz.Request{Method: "GET", Path: "/"},
		},
		{
			name: "envoy: target without the prefix", method: "GET", target: "/agents", prefix: "/authz",
			want: authz.Request{Malformed: true},
		},
		{
			name: "envoy: prefix is a whole segment", method: "GET", target: "/authzagents", prefix: "/authz",
			want: authz.Request{Malformed: true},
		},
		{
			name: "envoy: prefix alone", method: "GET", target: "/authz", prefix: "/authz",
			want: authz.Request{Malformed: true},
		},
		{
			name: "nginx: X-Original-*", method: "GET", target: "/_authz", prefix: "/authz",
			header: [][2]string{{"X-Original-URI", "/agents/web/runs?stream=1"}, {"X-Original-Method", "POST"}},
			want:   authz.Request{Method: "POST", Path: "/agents/web/runs?stream=1"},
		},
		{
			name: "nginx: URI without method keeps the request's", method: "PUT", target: "/_authz",
			header: [][2]string{{"X-Original-URI", "/agents/x"}},
			want:   authz.Request{Method: "PUT", Path: "/agents/x"},
		},
		{
			name: "traefik: X-Forwarded-*", method: "GET", target: "/",
			header: [][2]string{{"X-Forwarded-Method", "DELETE"}, {"X-Forwarded-Uri", "/agents/x?y=1"}, {"X-Forwarded-Host", "api.example.com"}},
			want:   authz.Request{Method: "DELETE", Path: "/agents/x?y=1"},
		},
		{
			name: "both proxies agree", method: "GET", target: "/",
			header: [][2]string{{"X-Original-URI", "/agents"}, {"X-Forwarded-Uri", "/agents"}},
			want:   authz.Request{Method: "GET", Path: "/agents"},
		},
		{
			name: "both proxies disagree on the path", method: "GET", target: "/",
			header: [][2]string{{"X-Original-URI", "/agents"}, {"X-Forwarded-Uri", "/health"}},
			want:   authz.Request{Malformed: true},
		},
		{
			name: "both proxies disagree on the method", method: "GET", target: "/",
			header: [][2]string{{"X-Original-Method", "GET"}, {"X-Forwarded-Method", "POST"}},
			want:   authz.Request{Malformed: true},
		},
		{
			name: "repeated X-Original-URI", method: "GET", target: "/",
			header: [][2]string{{"X-Original-URI", "/health"}, {"X-Original-URI", "/config"}},
			want:   authz.Request{Malformed: true},
		},
		{
			name: "empty X-Forwarded-Uri", method: "GET", target: "/",
			header: [][2]string{{"X-Forwarded-Uri", ""}},
			want:   authz.Request{Malformed: true},
		},
		{
			name: "headers lower-cased, repeats joined in order, host kept", method: "GET", target: "/agents",
			header: [][2]string{{"Authorization", "Bearer t"}, {"X-Agentos-User-Id", "admin"}, {"Cookie", "a=1"}, {"Cookie", "b=2"}, {"Accept", ""}, {"Accept", "x"}},
			want:   authz.Request{Method: "GET", Path: "/agents"},
			wantHeader: map[string]string{
				"authorization": "Bearer t", "x-agentos-user-id": "admin", "cookie": "a=1,b=2", "accept": ",x", "host": "authz.test",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://authz.test"+tt.target, nil)
			r.RequestURI = tt.target
			for _, kv := range tt.header {
				r.Header.Add(kv[0], kv[1])
			}
			got := FromHTTPRequest(r, tt.prefix)
			if got.Method != tt.want.Method || got.Path != tt.want.Path || got.Malformed != tt.want.Malformed {
				t.Errorf("FromHTTPRequest(%s %s, prefix %q) = {%q %q malformed=%v}, want {%q %q malformed=%v}",
					tt.method, tt.target, tt.prefix, got.Method, got.Path, got.Malformed, tt.want.Method, tt.want.Path, tt.want.Malformed)
			}
			if tt.want.Malformed && got.Headers != nil {
				t.Errorf("a malformed check carries headers %v", got.Headers)
			}
			for k, v := range tt.wantHeader {
				if got.Headers[k] != v {
					t.Errorf("FromHTTPRequest(...).Headers[%q] = %q, want %q", k, got.Headers[k], v)
				}
			}
			for k := range got.Headers {
				if k != strings.ToLower(k) {
					t.Errorf("header key %q is not lower-case", k)
				}
			}
		})
	}
}

// reply is what a proxy reads from the HTTP check's answer.
type reply struct {
	status int
	header http.Header
	body   string
}

func serveCheck(t *testing.T, h http.Handler, r *http.Request) reply {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	res := w.Result()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: res.StatusCode, header: res.Header, body: string(body)}
}

// TestHTTPHandler runs the real pipeline behind the handler, the way each
// proxy calls it, and checks the reply the proxy acts on.
func TestHTTPHandler(t *testing.T) {
	reader := mintHS(t, "alice", "agents:read")
	runner := mintHS(t, "bob", "agents:web:run")
	h := NewHTTPHandler(newJWTAuthorizer(t, ""), HTTPOptions{PathPrefix: "/ext-authz", Logger: zaptest.NewLogger(t)})

	tests := []struct {
		name       string
		method     string
		target     string
		header     map[string]string
		wantStatus int
		wantDetail string            // denials
		wantHeader map[string]string // reply headers; "" = absent
	}{
		{
			name: "envoy: allowed, identity and removals", method: "GET", target: "/ext-authz/agents?limit=5",
			header:     map[string]string{"Authorization": "Bearer " + reader, "X-Agentos-User-Id": "admin", "X-Agentos-Claim-Role": "root"},
			wantStatus: 200,
			wantHeader: map[string]string{
				"X-Agentos-User-Id": "alice", "X-Agentos-Session-Id": "s-1", "X-Agentos-Scopes": "agents:read", "X-Agentos-Auth": "jwt",
				"X-Envoy-Auth-Headers-To-Remove": "x-agentos-claim-role", "Content-Type": "",
			},
		},
		{
			name: "envoy: per-resource scope", method: "POST", target: "/ext-authz/agents/web/runs",
			header:     map[string]string{"Authorization": "Bearer " + runner},
			wantStatus: 200,
			wantHeader: map[string]string{"X-Agentos-User-Id": "bob", "X-Envoy-Auth-Headers-To-Remove": ""},
		},
		{
			name: "envoy: no credential", method: "GET", target: "/ext-authz/agents",
			wantStatus: 401, wantDetail: "Authorization header missing",
			wantHeader: map[string]string{"Www-Authenticate": "Bearer", "Content-Type": "application/json", "X-Agentos-User-Id": ""},
		},
		{
			name: "envoy: forbidden, CORS for an accepted origin", method: "POST", target: "/ext-authz/agents/other/runs",
			header:     map[string]string{"Authorization": "Bearer " + runner, "Origin": "https://app.example.com"},
			wantStatus: 403, wantDetail: "Insufficient permissions. Required scope(s): agents:run",
			wantHeader: map[string]string{
				"Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Allow-Credentials": "true",
				"Www-Authenticate": "", "X-Agentos-User-Id": "",
			},
		},
		{
			name: "envoy: no CORS for another origin", method: "GET", target: "/ext-authz/agents",
			header:     map[string]string{"Origin": "https://evil.example.com"},
			wantStatus: 401, wantDetail: "Authorization header missing",
			wantHeader: map[string]string{"Access-Control-Allow-Origin": ""},
		},
		{
			name: "envoy: ambiguous path", method: "GET", target: "/ext-authz/agents/a%2Fb",
			header:     map[string]string{"Authorization": "Bearer " + reader},
			wantStatus: 400, wantDetail: "Malformed request path",
		},
		{
			name: "envoy: target without the configured prefix", method: "GET", target: "/agents",
			header:     map[string]string{"Authorization": "Bearer " + reader},
			wantStatus: 400, wantDetail: "Malformed check request",
		},
		{
			name: "envoy: preflight", method: "OPTIONS", target: "/ext-authz/agents",
			header:     map[string]string{"Origin": "https://app.example.com", "X-Agentos-User-Id": "admin"},
			wantStatus: 200,
			wantHeader: map[string]string{"X-Agentos-Auth": "none", "X-Agentos-User-Id": "", "X-Envoy-Auth-Headers-To-Remove": "x-agentos-user-id"},
		},
		{
			name: "nginx: allowed", method: "GET", target: "/_authz",
			header:     map[string]string{"X-Original-URI": "/agents?x=1", "X-Original-Method": "GET", "Authorization": "Bearer " + reader},
			wantStatus: 200,
			wantHeader: map[string]string{"X-Agentos-User-Id": "alice", "X-Agentos-Auth": "jwt"},
		},
		{
			name: "nginx: the original method decides", method: "GET", target: "/_authz",
			header:     map[string]string{"X-Original-URI": "/agents/web", "X-Original-Method": "DELETE", "Authorization": "Bearer " + reader},
			wantStatus: 403, wantDetail: "Insufficient permissions. Required scope(s): agents:delete",
		},
		{
			name: "nginx: excluded route carries no identity", method: "GET", target: "/_authz",
			header:     map[string]string{"X-Original-URI": "/health", "X-Original-Method": "GET", "Authorization": "Bearer " + reader},
			wantStatus: 200,
			wantHeader: map[string]string{"X-Agentos-Auth": "none", "X-Agentos-User-Id": ""},
		},
		{
			name: "traefik: allowed", method: "GET", target: "/",
			header:     map[string]string{"X-Forwarded-Method": "POST", "X-Forwarded-Uri": "/agents/web/runs", "Authorization": "bearer " + runner},
			wantStatus: 200,
			wantHeader: map[string]string{"X-Agentos-User-Id": "bob", "X-Agentos-Scopes": "agents:web:run"},
		},
		{
			name: "traefik: expired-looking garbage token", method: "GET", target: "/",
			header:     map[string]string{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/agents", "Authorization": "Bearer not.a.jwt"},
			wantStatus: 401,
			wantHeader: map[string]string{"Www-Authenticate": "Bearer"},
		},
		{
			name: "traefik: client-sent X-Original-URI disagrees", method: "GET", target: "/",
			header:     map[string]string{"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/config", "X-Original-URI": "/health", "Authorization": "Bearer " + reader},
			wantStatus: 400, wantDetail: "Malformed check request",
		},
		{
			name: "HEAD is checked as GET", method: "HEAD", target: "/ext-authz/agents",
			header:     map[string]string{"Authorization": "Bearer " + reader},
			wantStatus: 200,
			wantHeader: map[string]string{"X-Agentos-User-Id": "alice"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequestWithContext(t.Context(), tt.method, "http://authz.test"+tt.target, nil)
			r.RequestURI = tt.target
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			got := serveCheck(t, h, r)
			if got.status != tt.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.target, got.status, got.body, tt.wantStatus)
			}
			for k, v := range tt.wantHeader {
				if g := got.header.Get(k); g != v {
					t.Errorf("%s %s: header %s = %q, want %q", tt.method, tt.target, k, g, v)
				}
			}
			if tt.wantStatus == 200 {
				if got.body != "" {
					t.Errorf("allow body = %q, want none", got.body)
				}
				return
			}
			if ct := got.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("denial content-type = %q, want application/json", ct)
			}
			var body struct {
				Detail *string `json:"detail"`
			}
			if err := json.Unmarshal([]byte(got.body), &body); err != nil || body.Detail == nil {
				t.Fatalf("denial body = %q, want {\"detail\": ...}", got.body)
			}
			if tt.wantDetail != "" && *body.Detail != tt.wantDetail {
				t.Errorf("detail = %q, want %q", *body.Detail, tt.wantDetail)
			}
			for _, tok := range []string{reader, runner} {
				if strings.Contains(got.body, tok) {
					t.Error("the reply holds the token")
				}
			}
		})
	}
}

// TestHTTPMatchesGRPC: the same request, sent as an HTTP check and as a
// CheckRequest to the same Decider, gets the same answer: one pipeline,
// two renderings.
func TestHTTPMatchesGRPC(t *testing.T) {
	a := newJWTAuthorizer(t, "")
	hh := NewHTTPHandler(a, HTTPOptions{})
	gs := NewServer(a)
	reader := mintHS(t, "alice", "agents:read")
	tests := []struct {
		method, path string
		header       map[string]string
	}{
		{method: "GET", path: "/agents", header: map[string]string{"authorization": "Bearer " + reader, "x-agentos-scopes": "x"}},
		{method: "GET", path: "/agents"},
		{method: "POST", path: "/agents/web/runs", header: map[string]string{"authorization": "Bearer " + reader, "origin": "https://app.example.com"}},
		{method: "GET", path: "/agents/../config", header: map[string]string{"authorization": "Bearer " + reader}},
		{method: "GET", path: "/docs", header: map[string]string{"x-agentos-user-id": "admin"}},
		{method: "GET", path: "/agents", header: map[string]string{"authorization": "Bearer garbage"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := httptest.NewRequestWithContext(t.Context(), tt.method, "http://authz.test/", nil)
			r.RequestURI = tt.path
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			hr := serveCheck(t, hh, r)

			resp, err := gs.Check(t.Context(), envoyRequest(tt.method, tt.path, tt.header))
			if err != nil {
				t.Fatal(err)
			}
			grpcStatus := 200
			if codes.Code(resp.GetStatus().GetCode()) != codes.OK {
				grpcStatus = int(resp.GetDeniedResponse().GetStatus().GetCode())
			}
			if hr.status != grpcStatus {
				t.Fatalf("HTTP %d, gRPC %d", hr.status, grpcStatus)
			}
			if grpcStatus != 200 {
				if hr.body != resp.GetDeniedResponse().GetBody() {
					t.Errorf("HTTP body %q, gRPC body %q", hr.body, resp.GetDeniedResponse().GetBody())
				}
				for _, o := range resp.GetDeniedResponse().GetHeaders() {
					if got := hr.header.Get(o.GetHeader().GetKey()); got != o.GetHeader().GetValue() {
						t.Errorf("denial header %s: HTTP %q, gRPC %q", o.GetHeader().GetKey(), got, o.GetHeader().GetValue())
					}
				}
				return
			}
			ok := resp.GetOkResponse()
			for _, o := range ok.GetHeaders() {
				if got := hr.header.Get(o.GetHeader().GetKey()); got != o.GetHeader().GetValue() {
					t.Errorf("upstream header %s: HTTP %q, gRPC %q", o.GetHeader().GetKey(), got, o.GetHeader().GetValue())
				}
			}
			var removed []string
			if v := hr.header.Get(headerEnvoyRemove); v != "" {
				removed = strings.Split(v, ",")
			}
			if !slices.Equal(removed, ok.GetHeadersToRemove()) {
				t.Errorf("removals: HTTP %q, gRPC %q", removed, ok.GetHeadersToRemove())
			}
		})
	}
}

// stubDecider returns a fixed decision and records the request.
type stubDecider struct {
	d    authz.Decision
	last authz.Request
	ctx  context.Context
}

func (s *stubDecider) Decide(ctx context.Context, r *authz.Request) authz.Decision {
	s.last, s.ctx = *r, ctx
	return s.d
}

// TestWriteDecision covers renderings the real pipeline rarely produces.
func TestWriteDecision(t *testing.T) {
	tests := []struct {
		name       string
		d          authz.Decision
		wantStatus int
		wantBody   string
		wantHeader map[string]string
		wantErr    bool
	}{
		{name: "zero decision denies", d: authz.Decision{}, wantStatus: 403, wantBody: `{"detail": "Forbidden"}`},
		{name: "canceled", d: authz.Decision{Status: 403, Reason: authz.ReasonCanceled, Detail: "Authorization check canceled"},
			wantStatus: 403, wantBody: `{"detail": "Authorization check canceled"}`},
		{name: "odd status denies as 403", d: authz.Decision{Status: 299, Detail: "x"}, wantStatus: 403, wantBody: `{"detail": "x"}`},
		{name: "detail escaped as JSON", d: authz.Decision{Status: 401, Detail: "a \"quoted\" <tag>\n"},
			wantStatus: 401, wantBody: `{"detail": "a \"quoted\" \u003ctag\u003e\n"}`, wantHeader: map[string]string{"Www-Authenticate": "Bearer"}},
		{name: "invalid CORS value dropped", d: authz.Decision{Status: 401, Detail: "x", Response: []authz.Header{
			{Name: "access-control-allow-origin", Value: "https://a\r\nSet-Cookie: x=1"}, {Name: "access-control-allow-methods", Value: "*"}}},
			wantStatus: 401, wantBody: `{"detail": "x"}`,
			wantHeader: map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": "*", "Set-Cookie": ""}},
		{name: "allow with a newline in a claim is not sent", d: authz.Decision{Status: 200, Upstream: []authz.Header{
			{Name: "x-agentos-user-id", Value: "alice\r\nx-agentos-scopes: agent_os:admin"}}},
			wantStatus: 500, wantBody: `{"detail": "Identity cannot be sent as HTTP headers"}`,
			wantHeader: map[string]string{"X-Agentos-User-Id": "", "X-Agentos-Scopes": ""}, wantErr: true},
		{name: "allow with a user id a proxy would trim is not sent", d: authz.Decision{Status: 200, Upstream: []authz.Header{
			{Name: "x-agentos-user-id", Value: "alice "}}},
			wantStatus: 500, wantHeader: map[string]string{"X-Agentos-User-Id": ""}, wantErr: true},
		{name: "allow with NUL is not sent", d: authz.Decision{Status: 200, Upstream: []authz.Header{
			{Name: "x-agentos-auth", Value: "jwt"}, {Name: "x-agentos-claim-x", Value: "a\x00b"}}},
			wantStatus: 500, wantHeader: map[string]string{"X-Agentos-Auth": ""}, wantErr: true},
		{name: "allow keeps non-ASCII and tabs", d: authz.Decision{Status: 200, Upstream: []authz.Header{
			{Name: "x-agentos-user-id", Value: "zoë\tx"}}},
			wantStatus: 200, wantHeader: map[string]string{"X-Agentos-User-Id": "zoë\tx"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			err := WriteDecision(w, &tt.d)
			if (err != nil) != tt.wantErr {
				t.Errorf("WriteDecision() error = %v, want error %v", err, tt.wantErr)
			}
			if w.Code != tt.wantStatus {
				t.Errorf("WriteDecision() status = %d, want %d", w.Code, tt.wantStatus)
			}
			if tt.wantBody != "" && w.Body.String() != tt.wantBody {
				t.Errorf("WriteDecision() body = %s, want %s", w.Body, tt.wantBody)
			}
			for k, v := range tt.wantHeader {
				if got := w.Header().Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestHTTPHandlerUncarriableLogged: the 500 for an identity HTTP cannot
// carry is logged, naming the header but never its value.
func TestHTTPHandlerUncarriableLogged(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	stub := &stubDecider{d: authz.Decision{Status: 200, Reason: authz.ReasonAllowed,
		Upstream: []authz.Header{{Name: "x-agentos-user-id", Value: "secret-user\n"}}}}
	h := NewHTTPHandler(stub, HTTPOptions{Logger: zap.New(core)})
	got := serveCheck(t, h, httptest.NewRequestWithContext(t.Context(), "GET", "/agents", nil))
	if got.status != 500 {
		t.Fatalf("status = %d, want 500", got.status)
	}
	if logs.Len() != 1 {
		t.Fatalf("%d log entries, want 1", logs.Len())
	}
	e := logs.All()[0]
	text, _ := json.Marshal(e.ContextMap())
	if !strings.Contains(string(text), "x-agentos-user-id") || strings.Contains(string(text)+e.Message, "secret-user") {
		t.Errorf("log = %s %s, want the header name and not its value", e.Message, text)
	}
}

// TestHTTPHandlerContext: the request's context reaches the Decider, so a
// client that goes away cancels the decision (which then fails closed).
func TestHTTPHandlerContext(t *testing.T) {
	stub := &stubDecider{d: authz.Decision{Status: 403, Reason: authz.ReasonCanceled}}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	got := serveCheck(t, NewHTTPHandler(stub, HTTPOptions{}), httptest.NewRequestWithContext(ctx, "GET", "/agents", nil))
	if stub.ctx == nil || stub.ctx.Err() == nil {
		t.Error("the Decider did not get the request's (cancelled) context")
	}
	if got.status != 403 {
		t.Errorf("status = %d, want 403", got.status)
	}
}

func TestNewHTTPHandlerNilDecider(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewHTTPHandler(nil) did not panic")
		}
	}()
	NewHTTPHandler(nil, HTTPOptions{})
}

// BenchmarkHTTPHandler measures the HTTP adapter alone (translation and
// rendering around a fixed decision), per proxy style.
func BenchmarkHTTPHandler(b *testing.B) {
	allow := authz.Decision{Status: 200, Reason: authz.ReasonAllowed, Upstream: []authz.Header{
		{Name: "x-agentos-user-id", Value: "alice"}, {Name: "x-agentos-scopes", Value: "agents:read"}, {Name: "x-agentos-auth", Value: "jwt"}}}
	deny := authz.Decision{Status: 401, Reason: authz.ReasonMissingCredential, Detail: "Authorization header missing"}
	cases := []struct {
		name   string
		d      authz.Decision
		header map[string]string
	}{
		{name: "envoy allow", d: allow, header: map[string]string{"Authorization": "Bearer t"}},
		{name: "nginx allow", d: allow, header: map[string]string{"Authorization": "Bearer t", "X-Original-URI": "/agents", "X-Original-Method": "GET"}},
		{name: "traefik deny", d: deny, header: map[string]string{"X-Forwarded-Uri": "/agents", "X-Forwarded-Method": "GET"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			h := NewHTTPHandler(&stubDecider{d: c.d}, HTTPOptions{})
			r := httptest.NewRequestWithContext(b.Context(), "GET", "/agents", nil)
			for k, v := range c.header {
				r.Header.Set(k, v)
			}
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				sinkStatus = w.Code
			}
		})
	}
}

var sinkStatus int
