package envoy

import (
	"context"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/agentos-authz/agentos-authz/authz"
)

// Decider decides one request. *authz.Authorizer implements it; tests use
// small fakes. Decide must be safe for concurrent use: the server calls it
// from one goroutine per in-flight Check.
type Decider interface {
	Decide(ctx context.Context, r *authz.Request) authz.Decision
}

// Server serves envoy.service.auth.v3.Authorization/Check: each
// CheckRequest is translated, decided by the Decider on the caller's
// goroutine, and rendered. It keeps no per-request state. Metrics are
// recorded by wrapping the Decider (Metrics.Decider), once for both
// transports.
type Server struct {
	authv3.UnimplementedAuthorizationServer

	decider Decider
}

var _ authv3.AuthorizationServer = (*Server)(nil)

// NewServer returns the Check service around d (register it with
// authv3.RegisterAuthorizationServer). It panics if d is nil: that is a
// wiring bug, not an input.
func NewServer(d Decider) *Server {
	if d == nil {
		panic("envoy: NewServer called with a nil Decider")
	}
	return &Server{decider: d}
}

// Check answers one ext_authz check. Every outcome, allow or deny, is a
// CheckResponse with a nil error: Envoy treats a failed RPC as an error
// (status_on_error, or failure_mode_allow!), not as a denial (ENVOY-NOTES §3).
// A cancelled ctx stops the translation of the request and reaches the
// Decider, which fails closed without deciding it.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	r := fromCheckRequest(ctx, req)
	r.Transport = authz.TransportGRPC
	d := s.decider.Decide(ctx, &r)
	return ToCheckResponse(&d), nil
}
