package envoy

import (
	"context"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/agentos-authz/agentos-authz/authz"
)

// Decider decides one request. *authz.Authorizer implements it; tests use
// small fakes. Decide must be safe for concurrent use: the server calls it
// from one goroutine per in-flight Check.
type Decider interface {
	Decide(ctx context.Context, r *authz.Request) authz.Decision
}

// Observer is called synchronously after each Check with the decision that
// was rendered and the time the decision and rendering took (for metrics).
// It must be safe for concurrent use and must not retain d.
type Observer func(d *authz.Decision, elapsed time.Duration)

// Option configures a Server.
type Option func(*Server)

// WithObserver registers o to be told about every decision.
func WithObserver(o Observer) Option {
	return func(s *Server) { s.observe = o }
}

// Server serves envoy.service.auth.v3.Authorization/Check: each
// CheckRequest is translated, decided by the Decider on the caller's
// goroutine, and rendered. It keeps no per-request state.
type Server struct {
	authv3.UnimplementedAuthorizationServer

	decider Decider
	observe Observer
	now     func() time.Time
}

var _ authv3.AuthorizationServer = (*Server)(nil)

// NewServer returns the Check service around d. It panics if d is nil:
// that is a wiring bug, not an input.
func NewServer(d Decider, opts ...Option) authv3.AuthorizationServer {
	if d == nil {
		panic("envoy: NewServer called with a nil Decider")
	}
	s := &Server{decider: d, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Check answers one ext_authz check. Every outcome, allow or deny, is a
// CheckResponse with a nil error: Envoy treats a failed RPC as an error
// (status_on_error, or failure_mode_allow!), not as a denial (ENVOY-NOTES §3).
// A cancelled ctx reaches the Decider, which fails closed.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	var start time.Time
	if s.observe != nil {
		start = s.now()
	}
	r := FromCheckRequest(req)
	d := s.decider.Decide(ctx, &r)
	resp := ToCheckResponse(&d)
	if s.observe != nil {
		s.observe(&d, s.now().Sub(start))
	}
	return resp, nil
}
