package envoy

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/agentos-authz/agentos-authz/authz"
)

// set is the expected form of one upstream or response header.
func set(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: k, Value: v},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

func denied(grpc codes.Code, msg string, http typev3.StatusCode, body string, hs ...*corev3.HeaderValueOption) *authv3.CheckResponse {
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(grpc), Message: msg},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: http},
			Headers: hs,
			Body:    body,
		}},
	}
}

var corsHeaders = []authz.Header{
	{Name: "access-control-allow-origin", Value: "https://app.example.com"},
	{Name: "access-control-allow-credentials", Value: "true"},
}

func TestToCheckResponse(t *testing.T) {
	tests := []struct {
		name string
		in   authz.Decision
		want *authv3.CheckResponse
	}{
		{
			name: "allow with identity headers and removals",
			in: authz.Decision{
				Status: 200, Reason: authz.ReasonAllowed, Auth: "jwt",
				Upstream: []authz.Header{
					{Name: "x-agentos-user-id", Value: "alice"},
					{Name: "x-agentos-scopes", Value: "agents:read teams:read"},
					{Name: "x-agentos-auth", Value: "jwt"},
					{Name: "x-agentos-accessible-ids", Value: `["a","b"]`},
				},
				Remove: []string{"x-agentos-session-id", "x-agentos-evil"},
			},
			want: &authv3.CheckResponse{
				Status: &rpcstatus.Status{Code: int32(codes.OK)},
				HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
					Headers: []*corev3.HeaderValueOption{
						set("x-agentos-user-id", "alice"),
						set("x-agentos-scopes", "agents:read teams:read"),
						set("x-agentos-auth", "jwt"),
						set("x-agentos-accessible-ids", `["a","b"]`),
					},
					HeadersToRemove: []string{"x-agentos-session-id", "x-agentos-evil"},
				}},
				DynamicMetadata: &structpb.Struct{Fields: map[string]*structpb.Value{
					"x-agentos-user-id":        structpb.NewStringValue("alice"),
					"x-agentos-scopes":         structpb.NewStringValue("agents:read teams:read"),
					"x-agentos-auth":           structpb.NewStringValue("jwt"),
					"x-agentos-accessible-ids": structpb.NewStringValue(`["a","b"]`),
				}},
			},
		},
		{
			name: "allow without headers",
			in:   authz.Decision{Status: 200, Reason: authz.ReasonAllowedUnmapped},
			want: &authv3.CheckResponse{
				Status:       &rpcstatus.Status{Code: int32(codes.OK)},
				HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
			},
		},
		{
			name: "allow with a non-UTF-8 value uses raw_value",
			in: authz.Decision{Status: 200, Upstream: []authz.Header{
				{Name: "x-agentos-claim-name", Value: "caf\xe9"},
			}},
			want: &authv3.CheckResponse{
				Status: &rpcstatus.Status{Code: int32(codes.OK)},
				HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
					Headers: []*corev3.HeaderValueOption{{
						Header:       &corev3.HeaderValue{Key: "x-agentos-claim-name", RawValue: []byte("caf\xe9")},
						AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
					}},
				}},
				DynamicMetadata: &structpb.Struct{Fields: map[string]*structpb.Value{
					"x-agentos-claim-name": structpb.NewStringValue("caf\uFFFD"),
				}},
			},
		},
		{
			name: "400 malformed check request",
			in:   authz.Decision{Status: 400, Reason: authz.ReasonMalformedRequest, Detail: "Malformed check request"},
			want: denied(codes.InvalidArgument, "Malformed check request", typev3.StatusCode_BadRequest,
				`{"detail": "Malformed check request"}`,
				set("content-type", "application/json")),
		},
		{
			name: "401 adds www-authenticate, then CORS",
			in: authz.Decision{
				Status: 401, Reason: authz.ReasonMissingCredential, Detail: "Authorization header missing",
				Response: corsHeaders,
			},
			want: denied(codes.Unauthenticated, "Authorization header missing", typev3.StatusCode_Unauthorized,
				`{"detail": "Authorization header missing"}`,
				set("content-type", "application/json"),
				set("www-authenticate", "Bearer"),
				set("access-control-allow-origin", "https://app.example.com"),
				set("access-control-allow-credentials", "true")),
		},
		{
			name: "403 insufficient scopes",
			in: authz.Decision{
				Status: 403, Reason: authz.ReasonInsufficientScopes,
				Detail: "Insufficient permissions. Required scope(s): agents:run",
				// Upstream headers never leak into a denial.
				Upstream: []authz.Header{{Name: "x-agentos-user-id", Value: "bob"}},
			},
			want: denied(codes.PermissionDenied, "Insufficient permissions. Required scope(s): agents:run",
				typev3.StatusCode_Forbidden,
				`{"detail": "Insufficient permissions. Required scope(s): agents:run"}`,
				set("content-type", "application/json")),
		},
		{
			name: "detail is JSON-escaped",
			in:   authz.Decision{Status: 401, Detail: "JWT cookie 'a\"b\\c' missing\n<&>"},
			want: denied(codes.Unauthenticated, "JWT cookie 'a\"b\\c' missing\n<&>", typev3.StatusCode_Unauthorized,
				`{"detail": "JWT cookie 'a\"b\\c' missing\n\u003c\u0026\u003e"}`,
				set("content-type", "application/json"),
				set("www-authenticate", "Bearer")),
		},
		{
			name: "zero decision fails closed as 403",
			in:   authz.Decision{},
			want: denied(codes.PermissionDenied, "Forbidden", typev3.StatusCode_Forbidden,
				`{"detail": "Forbidden"}`,
				set("content-type", "application/json")),
		},
		{
			name: "canceled decision with an unknown status denies 403",
			in:   authz.Decision{Status: 499, Reason: authz.ReasonCanceled, Detail: "Request canceled"},
			want: denied(codes.PermissionDenied, "Request canceled", typev3.StatusCode_Forbidden,
				`{"detail": "Request canceled"}`,
				set("content-type", "application/json")),
		},
		{
			name: "a 2xx other than 200 is not an allow",
			in:   authz.Decision{Status: 204, Detail: "x"},
			want: denied(codes.PermissionDenied, "x", typev3.StatusCode_Forbidden, `{"detail": "x"}`,
				set("content-type", "application/json")),
		},
		{
			name: "non-UTF-8 detail and CORS origin stay marshalable",
			in: authz.Decision{
				Status: 403, Detail: "bad \xff",
				Response: []authz.Header{{Name: "access-control-allow-origin", Value: "https://\xfe.example"}},
			},
			want: denied(codes.PermissionDenied, "bad \uFFFD", typev3.StatusCode_Forbidden, `{"detail": "bad \ufffd"}`,
				set("content-type", "application/json"),
				&corev3.HeaderValueOption{
					Header:       &corev3.HeaderValue{Key: "access-control-allow-origin", RawValue: []byte("https://\xfe.example")},
					AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
				}),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ToCheckResponse(&tc.in)
			if !proto.Equal(got, tc.want) {
				t.Errorf("ToCheckResponse(status %d) =\n%v\nwant\n%v", tc.in.Status, got, tc.want)
			}
			checkResponseInvariants(t, &tc.in, got)
		})
	}
}

// checkResponseInvariants asserts what the conformance harness asserts of
// every reply (conformance README, "Always").
func checkResponseInvariants(t *testing.T, d *authz.Decision, got *authv3.CheckResponse) {
	t.Helper()
	if err := got.ValidateAll(); err != nil {
		t.Errorf("ValidateAll() = %v", err)
	}
	if _, err := proto.Marshal(got); err != nil {
		t.Errorf("proto.Marshal() = %v", err)
	}
	if got.GetErrorResponse() != nil {
		t.Error("error_response is set")
	}
	if d.Status == 200 {
		if got.GetStatus().GetCode() != int32(codes.OK) || got.GetOkResponse() == nil {
			t.Errorf("allow rendered as code %d, ok_response %v", got.GetStatus().GetCode(), got.GetOkResponse())
		}
		set := map[string]bool{}
		for _, h := range got.GetOkResponse().GetHeaders() {
			set[h.GetHeader().GetKey()] = true
			if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD || h.GetAppend() != nil {
				t.Errorf("upstream header %q: append_action %v, append %v", h.GetHeader().GetKey(), h.GetAppendAction(), h.GetAppend())
			}
		}
		for _, k := range got.GetOkResponse().GetHeadersToRemove() {
			if set[k] {
				t.Errorf("header %q is both set and removed (Envoy would drop it)", k)
			}
		}
		return
	}
	dr := got.GetDeniedResponse()
	if dr == nil {
		t.Fatal("deny without denied_response")
	}
	wantCode := map[typev3.StatusCode]codes.Code{
		typev3.StatusCode_BadRequest: codes.InvalidArgument, typev3.StatusCode_Unauthorized: codes.Unauthenticated,
		typev3.StatusCode_Forbidden: codes.PermissionDenied,
	}[dr.GetStatus().GetCode()]
	if got.GetStatus().GetCode() != int32(wantCode) || wantCode == codes.OK {
		t.Errorf("deny: gRPC code %d for HTTP %v", got.GetStatus().GetCode(), dr.GetStatus().GetCode())
	}
	var body struct {
		Detail *string `json:"detail"`
	}
	if err := json.Unmarshal([]byte(dr.GetBody()), &body); err != nil || body.Detail == nil {
		t.Errorf("deny body %q: %v, detail %v", dr.GetBody(), err, body.Detail)
	}
	hs := map[string]string{}
	for _, h := range dr.GetHeaders() {
		hs[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	if hs["content-type"] != "application/json" {
		t.Errorf("deny content-type = %q", hs["content-type"])
	}
	if (dr.GetStatus().GetCode() == typev3.StatusCode_Unauthorized) != (hs["www-authenticate"] == "Bearer") {
		t.Errorf("HTTP %v with www-authenticate %q", dr.GetStatus().GetCode(), hs["www-authenticate"])
	}
}

// TestDetailBodyMatchesEncodingJSON: the hand-written escaper produces
// byte for byte what encoding/json produces, for awkward input too.
func TestDetailBodyMatchesEncodingJSON(t *testing.T) {
	tests := []string{
		"",
		"Token has expired",
		`quote " backslash \ slash /`,
		"controls \x00\x01\x08\x0c\x1f\x7f \t\r\n",
		"html <script>&amp;</script>",
		"line sep \u2028 para sep \u2029",
		"bad utf8 \xff\xfe end \xc3",
		"unicode déjà vu ✓ 🚀",
	}
	for _, detail := range tests {
		checkDetailBody(t, detail)
	}
}

func checkDetailBody(t *testing.T, detail string) {
	t.Helper()
	enc, err := json.Marshal(detail)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"detail": ` + string(enc) + `}`
	got := detailBody(detail)
	if got != want {
		t.Errorf("detailBody(%q) = %s, want %s", detail, got, want)
	}
	if !utf8.ValidString(got) {
		t.Errorf("detailBody(%q) is not valid UTF-8", detail)
	}
	if extra := escapeSlack(detail); len(got) != len(`{"detail": ""}`)+len(detail)+extra {
		t.Errorf("escapeSlack(%q) = %d, off by %d", detail, extra, len(got)-len(`{"detail": ""}`)-len(detail)-extra)
	}
}

func FuzzDetailBody(f *testing.F) {
	f.Add("Invalid token: signature")  // plain
	f.Add("a\"b\\c\n\x00<>&")          // every escape class
	f.Add("\u2028\u2029 \xff\xc3(")    // JS separators and invalid UTF-8
	f.Add(strings.Repeat("é\x01", 64)) // long mixed
	f.Fuzz(func(t *testing.T, detail string) { checkDetailBody(t, detail) })
}

// TestToCheckResponseAllocs: the hot path allocates a fixed number of
// objects whatever the number of headers (no per-header allocation).
func TestToCheckResponseAllocs(t *testing.T) {
	headers := func(n int) []authz.Header {
		hs := make([]authz.Header, n)
		for i := range hs {
			hs[i] = authz.Header{Name: "x-agentos-h" + string(rune('a'+i)), Value: "v"}
		}
		return hs
	}
	allocs := func(d authz.Decision) float64 {
		return testing.AllocsPerRun(200, func() { responseSink = ToCheckResponse(&d) })
	}
	allow1 := allocs(authz.Decision{Status: 200, Upstream: headers(1)})
	deny0 := allocs(authz.Decision{Status: 401, Detail: "Authorization header missing"})
	for n := 2; n <= 6; n++ {
		if got := allocs(authz.Decision{Status: 200, Upstream: headers(n)}); got != allow1 {
			t.Errorf("allow with %d headers: %v allocs, with 1: %v", n, got, allow1)
		}
		if got := allocs(authz.Decision{Status: 401, Detail: "Authorization header missing", Response: headers(n)}); got != deny0 {
			t.Errorf("deny with %d CORS headers: %v allocs, with 0: %v", n, got, deny0)
		}
	}
	t.Logf("allocs: allow %v, deny %v", allow1, deny0)
}

var responseSink *authv3.CheckResponse

func BenchmarkToCheckResponse(b *testing.B) {
	cases := []struct {
		name string
		d    authz.Decision
	}{
		{name: "allow", d: authz.Decision{Status: 200, Upstream: []authz.Header{
			{Name: "x-agentos-user-id", Value: "alice"},
			{Name: "x-agentos-session-id", Value: "s-1"},
			{Name: "x-agentos-scopes", Value: "agents:read agents:web:run"},
			{Name: "x-agentos-auth", Value: "jwt"},
		}, Remove: []string{"x-agentos-evil"}}},
		{name: "deny401", d: authz.Decision{Status: 401, Detail: "Token has expired", Response: corsHeaders}},
		{name: "deny403", d: authz.Decision{Status: 403, Detail: "Insufficient permissions. Required scope(s): agents:run"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				responseSink = ToCheckResponse(&c.d)
			}
		})
	}
}
