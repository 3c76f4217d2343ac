package envoy

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/agentos-authz/agentos-authz/authz"
)

// fakeDecider is a tiny stand-in for authz.Authorizer: 400 on a malformed
// request, 401 without an authorization header, 403 unless the bearer is
// "Bearer let-me-in", else allow with an identity header. It records the
// last request it saw.
type fakeDecider struct {
	mu   sync.Mutex
	last authz.Request
}

func (f *fakeDecider) Decide(ctx context.Context, r *authz.Request) authz.Decision {
	f.mu.Lock()
	f.last = *r
	f.mu.Unlock()
	switch {
	case ctx.Err() != nil:
		return authz.Decision{Reason: authz.ReasonCanceled}
	case r.Malformed:
		return authz.Decision{Status: 400, Reason: authz.ReasonMalformedRequest, Detail: "Malformed check request"}
	case r.Headers["authorization"] == "":
		return authz.Decision{Status: 401, Reason: authz.ReasonMissingCredential, Detail: "Authorization header missing"}
	case r.Headers["authorization"] != "Bearer let-me-in":
		return authz.Decision{Status: 403, Reason: authz.ReasonInsufficientScopes, Detail: "Insufficient permissions. Required scope(s): agents:read"}
	}
	d := authz.Decision{Status: 200, Reason: authz.ReasonAllowed, Auth: "jwt",
		Upstream: []authz.Header{{Name: "x-agentos-user-id", Value: "alice"}, {Name: "x-agentos-auth", Value: "jwt"}}}
	for k := range r.Headers {
		if strings.HasPrefix(k, "x-agentos-") && k != "x-agentos-user-id" && k != "x-agentos-auth" {
			d.Remove = append(d.Remove, k)
		}
	}
	return d
}

func (f *fakeDecider) lastRequest() authz.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func TestServerCheck(t *testing.T) {
	withAuth := func(v string) *authv3.CheckRequest {
		return httpRequest(&authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: "/agents?x=1",
			Headers: map[string]string{"authorization": v, "x-agentos-scopes": "agent_os:admin"},
		})
	}
	tests := []struct {
		name     string
		in       *authv3.CheckRequest
		wantCode codes.Code
		wantHTTP typev3.StatusCode
	}{
		{name: "nil request", in: nil, wantCode: codes.InvalidArgument, wantHTTP: typev3.StatusCode_BadRequest},
		{name: "empty request", in: &authv3.CheckRequest{}, wantCode: codes.InvalidArgument, wantHTTP: typev3.StatusCode_BadRequest},
		{name: "no credential", in: withAuth(""), wantCode: codes.Unauthenticated, wantHTTP: typev3.StatusCode_Unauthorized},
		{name: "forbidden", in: withAuth("Bearer nope"), wantCode: codes.PermissionDenied, wantHTTP: typev3.StatusCode_Forbidden},
		{name: "allowed", in: withAuth("Bearer let-me-in"), wantCode: codes.OK},
	}
	srv := NewServer(&fakeDecider{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := srv.Check(t.Context(), tc.in)
			if err != nil {
				t.Fatalf("Check() error = %v, want a response", err)
			}
			if got := codes.Code(resp.GetStatus().GetCode()); got != tc.wantCode {
				t.Errorf("Check() code = %v, want %v", got, tc.wantCode)
			}
			if got := resp.GetDeniedResponse().GetStatus().GetCode(); got != tc.wantHTTP {
				t.Errorf("Check() HTTP status = %v, want %v", got, tc.wantHTTP)
			}
		})
	}
}

func TestServerCheckCanceledFailsClosed(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	req := httpRequest(&authv3.AttributeContext_HttpRequest{
		Method: "GET", Path: "/", Headers: map[string]string{"authorization": "Bearer let-me-in"},
	})
	resp, err := NewServer(&fakeDecider{}).Check(ctx, req)
	if err != nil {
		t.Fatalf("Check() error = %v", err)
	}
	if resp.GetStatus().GetCode() == int32(codes.OK) || resp.GetDeniedResponse() == nil {
		t.Errorf("Check(canceled) = %v, want a denial", resp)
	}
}

func TestNewServerNilDecider(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewServer(nil) did not panic")
		}
	}()
	NewServer(nil)
}

// TestServerOverGRPC runs the real service on an in-memory listener and
// sends every fixture through a real gRPC client.
func TestServerOverGRPC(t *testing.T) {
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	fake := &fakeDecider{}
	authv3.RegisterAuthorizationServer(gs, NewServer(fake))
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	t.Cleanup(func() {
		gs.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve() = %v", err)
		}
	})
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := authv3.NewAuthorizationClient(conn)

	t.Run("empty request is a 400 reply, not an RPC error", func(t *testing.T) {
		resp, err := client.Check(t.Context(), &authv3.CheckRequest{})
		if err != nil {
			t.Fatalf("Check() error = %v", err)
		}
		if got := resp.GetDeniedResponse().GetStatus().GetCode(); got != typev3.StatusCode_BadRequest {
			t.Errorf("Check(empty) HTTP = %v, want 400", got)
		}
		if !strings.Contains(resp.GetDeniedResponse().GetBody(), "Malformed check request") {
			t.Errorf("Check(empty) body = %q", resp.GetDeniedResponse().GetBody())
		}
	})

	for _, name := range fixtureNames(t) {
		t.Run(name, func(t *testing.T) {
			cr := loadFixture(t, name)
			want := FromCheckRequest(cr)
			resp, err := client.Check(t.Context(), cr)
			if err != nil {
				t.Fatalf("Check(%s) error = %v", name, err)
			}
			got := fake.lastRequest()
			if got.Method != want.Method || got.Path != want.Path || len(got.Headers) != len(want.Headers) {
				t.Errorf("server saw %s %q with %d headers, want %s %q with %d",
					got.Method, got.Path, len(got.Headers), want.Method, want.Path, len(want.Headers))
			}
			for k, v := range want.Headers {
				if got.Headers[k] != v {
					t.Errorf("server saw %s = %q, want %q", k, got.Headers[k], v)
				}
			}
			// Fixtures carry "Bearer <token>" or no credential: the fake
			// answers 403 or 401, never an RPC error.
			wantHTTP := typev3.StatusCode_Forbidden
			if _, ok := want.Headers["authorization"]; !ok {
				wantHTTP = typev3.StatusCode_Unauthorized
			}
			if got := resp.GetDeniedResponse().GetStatus().GetCode(); got != wantHTTP {
				t.Errorf("Check(%s) HTTP = %v, want %v", name, got, wantHTTP)
			}
		})
	}

	t.Run("allow strips spoofed x-agentos headers", func(t *testing.T) {
		cr := loadFixture(t, "raw-header-map.json")
		for _, hv := range cr.GetAttributes().GetRequest().GetHttp().GetHeaderMap().GetHeaders() {
			if hv.GetKey() == "authorization" {
				hv.RawValue = []byte("Bearer let-me-in")
			}
		}
		resp, err := client.Check(t.Context(), cr)
		if err != nil {
			t.Fatalf("Check() error = %v", err)
		}
		ok := resp.GetOkResponse()
		if ok == nil {
			t.Fatalf("Check() = %v, want ok_response", resp)
		}
		if got := ok.GetHeadersToRemove(); len(got) != 1 || got[0] != "x-agentos-scopes" {
			t.Errorf("headers_to_remove = %q, want [x-agentos-scopes]", got)
		}
		if got := resp.GetDynamicMetadata().GetFields()["x-agentos-user-id"].GetStringValue(); got != "alice" {
			t.Errorf("dynamic_metadata x-agentos-user-id = %q, want alice", got)
		}
	})
}
