package harness

import (
	"encoding/json"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
)

const ow = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD

func allow(headers []*corev3.HeaderValueOption, remove ...string) *authv3.CheckResponse {
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{Headers: headers, HeadersToRemove: remove}},
	}
}

func deny(httpStatus int, code codes.Code, body string, headers ...*corev3.HeaderValueOption) *authv3.CheckResponse {
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode(httpStatus)}, Headers: headers, Body: body,
		}},
	}
}

func jsonCT() *corev3.HeaderValueOption { return opt("content-type", "application/json", ow) }
func bearer() *corev3.HeaderValueOption { return opt("www-authenticate", "Bearer", ow) }
func body(detail string) string         { return mustJSON(map[string]string{"detail": detail}) }
func expectJSON(t *testing.T, doc string) conformance.Expect {
	t.Helper()
	var e conformance.Expect
	if err := json.Unmarshal([]byte(doc), &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestInterpretAndCompare(t *testing.T) {
	b, err := BuildRequest(mustRequest(t, `{"path": "/agents", "headers": {"x-agentos-user-id": "admin", "x-agentos-x": "1"}}`), map[string]string{"token": "T"})
	if err != nil {
		t.Fatal(err)
	}
	goodAllow := allow([]*corev3.HeaderValueOption{
		opt("x-agentos-user-id", "u1", ow), opt("x-agentos-auth", "jwt", ow),
		opt("x-agentos-accessible-ids", `["a2","a1"]`, ow), opt("x-agentos-claim-level", "7", ow),
	}, "x-agentos-x")
	tests := []struct {
		name   string
		expect string
		resp   *authv3.CheckResponse
		want   []string // substrings, one per wanted problem; none = pass
	}{
		{
			name:   "allow as wanted",
			expect: `{"status": 200, "headers": {"x-agentos-user-id": "u1", "x-agentos-accessible-ids": {"set": ["a1", "a2"]}, "x-agentos-claim-level": {"json": 7}}, "absent_headers": ["x-agentos-x", "x-agentos-session-id"]}`,
			resp:   goodAllow,
		},
		{
			name:   "allow when a deny is wanted",
			expect: `{"status": 403, "detail": "Insufficient permissions. Required scope(s): agents:read"}`,
			resp:   goodAllow,
			want:   []string{`GET /agents = 200, want 403 "Insufficient permissions. Required scope(s): agents:read"`},
		},
		{
			name:   "deny when an allow is wanted",
			expect: `{"status": 200}`,
			resp:   deny(403, codes.PermissionDenied, body("Insufficient permissions. Required scope(s): agents:read"), jsonCT()),
			want:   []string{`GET /agents = 403 "Insufficient permissions. Required scope(s): agents:read", want 200`},
		},
		{
			name:   "client identity survives: default append action",
			expect: `{"status": 200}`,
			resp:   allow([]*corev3.HeaderValueOption{opt("x-agentos-user-id", "u1", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD)}, "x-agentos-x"),
			want:   []string{`client-sent x-agentos-user-id: "admin" reaches the upstream`},
		},
		{
			name:   "client header not removed",
			expect: `{"status": 200}`,
			resp:   allow([]*corev3.HeaderValueOption{opt("x-agentos-user-id", "u1", ow)}),
			want:   []string{`client-sent x-agentos-x: "1" reaches the upstream`},
		},
		{
			name:   "wrong header values",
			expect: `{"status": 200, "headers": {"x-agentos-user-id": "u2", "x-agentos-accessible-ids": {"set": ["a1"]}, "x-agentos-claim-level": {"json": "7"}, "x-agentos-session-id": "s"}, "absent_headers": ["x-agentos-auth"]}`,
			resp:   goodAllow,
			want: []string{
				`upstream x-agentos-accessible-ids = "[\"a2\",\"a1\"]", want the set ["a1"]`,
				`upstream x-agentos-claim-level = "7", want JSON "7"`,
				`upstream x-agentos-session-id = [], want exactly one value`,
				`upstream x-agentos-user-id = "u1", want "u2"`,
				`upstream x-agentos-auth = ["jwt"], want absent`,
			},
		},
		{
			name:   "duplicate ids",
			expect: `{"status": 200, "headers": {"x-agentos-accessible-ids": {"set": ["a1"]}}}`,
			resp:   allow([]*corev3.HeaderValueOption{opt("x-agentos-user-id", "u1", ow), opt("x-agentos-accessible-ids", `["a1","a1"]`, ow)}, "x-agentos-x"),
			want:   []string{`has "a1" twice`},
		},
		{
			name:   "401 as wanted, with CORS",
			expect: `{"status": 401, "detail_prefix": "Invalid token: ", "response_headers": {"access-control-allow-origin": "https://o"}, "absent_response_headers": ["x-nope"]}`,
			resp:   deny(401, codes.Unauthenticated, body("Invalid token: bad signature"), jsonCT(), bearer(), opt("access-control-allow-origin", "https://o", ow)),
		},
		{
			name:   "401 without www-authenticate, with the wrong gRPC code",
			expect: `{"status": 401, "detail": "Authorization header missing"}`,
			resp:   deny(401, codes.PermissionDenied, body("Authorization header missing"), jsonCT()),
			want:   []string{"HTTP 401 with gRPC code PermissionDenied, want Unauthenticated", `401 www-authenticate = [], want ["Bearer"]`},
		},
		{
			name:   "deny body not JSON, no content-type",
			expect: `{"status": 400, "detail": "Malformed request path"}`,
			resp:   deny(400, codes.InvalidArgument, "Malformed request path"),
			want:   []string{"is not a JSON object", `content-type = [], want ["application/json"]`, `= 400 "", want detail "Malformed request path"`},
		},
		{
			name:   "detail mismatch and response headers",
			expect: `{"status": 403, "detail": "a", "response_headers": {"access-control-allow-origin": "https://o"}, "absent_response_headers": ["x-leak"]}`,
			resp:   deny(403, codes.PermissionDenied, body("b"), jsonCT(), opt("x-leak", "1", ow)),
			want:   []string{`= 403 "b", want detail "a"`, `response access-control-allow-origin = [], want exactly one value`, `response x-leak = ["1"], want absent`},
		},
		{
			name:   "denied without denied_response",
			expect: `{"status": 403}`,
			resp:   &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)}},
			want:   []string{"without a denied_response"},
		},
		{
			name:   "error_response is not a decision",
			expect: `{"status": 403}`,
			resp: &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)},
				HttpResponse: &authv3.CheckResponse_ErrorResponse{ErrorResponse: &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: 403}}}},
			want: []string{"error_response", "without a denied_response"},
		},
		{
			name:   "status list",
			expect: `{"status": [401, 403]}`,
			resp:   deny(404, codes.NotFound, body("x"), jsonCT()),
			want:   []string{"not a decision of the contract", `= 404 "x", want 401 or 403`},
		},
		{
			name:   "upstream headers wanted on a deny",
			expect: `{"status": [200, 403], "headers": {"x-agentos-auth": "jwt"}}`,
			resp:   deny(403, codes.PermissionDenied, body("x"), jsonCT()),
			want:   []string{"expects upstream headers, which only an allow has"},
		},
	}
	for _, tt := range tests {
		got := Compare(expectJSON(t, tt.expect), b, Interpret(b, tt.resp))
		if len(got) != len(tt.want) {
			t.Errorf("%s: problems = %q, want %d: %q", tt.name, got, len(tt.want), tt.want)
			continue
		}
		all := strings.Join(got, "\n")
		for _, w := range tt.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s: problems = %q, want one holding %q", tt.name, got, w)
			}
		}
	}
}
