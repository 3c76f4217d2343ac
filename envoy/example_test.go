package envoy_test

import (
	"context"
	"fmt"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/envoy"
)

// headerDecider allows requests that carry an authorization header and
// denies the rest with 401, standing in for *authz.Authorizer.
type headerDecider struct{}

func (headerDecider) Decide(_ context.Context, r *authz.Request) authz.Decision {
	if r.Malformed {
		return authz.Decision{Status: 400, Reason: authz.ReasonMalformedRequest, Detail: "Malformed check request"}
	}
	if r.Headers["authorization"] == "" {
		return authz.Decision{Status: 401, Reason: authz.ReasonMissingCredential, Detail: "Authorization header missing"}
	}
	return authz.Decision{Status: 200, Reason: authz.ReasonAllowed,
		Upstream: []authz.Header{{Name: "x-agentos-auth", Value: "jwt"}}}
}

func ExampleNewServer() {
	srv := envoy.NewServer(headerDecider{})
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/agents?limit=5", Headers: map[string]string{}},
	}}}
	resp, _ := srv.Check(context.Background(), req)
	denied := resp.GetDeniedResponse()
	fmt.Println(resp.GetStatus().GetCode(), denied.GetStatus().GetCode(), denied.GetBody())

	req.Attributes.Request.Http.Headers["authorization"] = "Bearer t"
	resp, _ = srv.Check(context.Background(), req)
	h := resp.GetOkResponse().GetHeaders()[0]
	fmt.Println(resp.GetStatus().GetCode(), h.GetHeader().GetKey(), h.GetHeader().GetValue(), h.GetAppendAction())

	resp, _ = srv.Check(context.Background(), &authv3.CheckRequest{})
	fmt.Println(resp.GetStatus().GetCode(), resp.GetDeniedResponse().GetBody())
	// Output:
	// 16 Unauthorized {"detail": "Authorization header missing"}
	// 0 x-agentos-auth jwt OVERWRITE_IF_EXISTS_OR_ADD
	// 3 {"detail": "Malformed check request"}
}

func ExampleFromCheckRequest() {
	r := envoy.FromCheckRequest(&authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "DELETE", Path: "/agents/web?force=1",
			Headers: map[string]string{"authorization": "Bearer t"}},
	}}})
	fmt.Println(r.Method, r.Path, r.Headers["authorization"], r.Malformed)
	fmt.Println(envoy.FromCheckRequest(nil).Malformed)
	// Output:
	// DELETE /agents/web?force=1 Bearer t false
	// true
}

func ExampleToCheckResponse() {
	resp := envoy.ToCheckResponse(&authz.Decision{
		Status: 403, Reason: authz.ReasonInsufficientScopes,
		Detail: "Insufficient permissions. Required scope(s): agents:run",
	})
	d := resp.GetDeniedResponse()
	fmt.Println(resp.GetStatus().GetCode(), d.GetStatus().GetCode())
	fmt.Println(d.GetBody())
	for _, h := range d.GetHeaders() {
		fmt.Println(h.GetHeader().GetKey()+":", h.GetHeader().GetValue())
	}
	// Output:
	// 7 Forbidden
	// {"detail": "Insufficient permissions. Required scope(s): agents:run"}
	// content-type: application/json
}
