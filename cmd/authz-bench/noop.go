package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/agentos-authz/agentos-authz/envoy"
)

// noopCheck answers every Check with OK at once: the cost of the gRPC path
// alone, the baseline the service is measured against.
type noopCheck struct {
	authv3.UnimplementedAuthorizationServer
}

var _ authv3.AuthorizationServer = noopCheck{}

func (noopCheck) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
	}, nil
}

// serverOptions are the gRPC server options of the no-op server: those of
// the service's ext_authz listener, so that the baseline differs from it by
// the decision alone.
func serverOptions() []grpc.ServerOption { return envoy.ServerOptions() }

// noopServer is a running no-op Check server.
type noopServer struct {
	srv  *grpc.Server
	lis  net.Listener
	done chan error
}

// startNoop listens on addr and serves the no-op Check and grpc.health.v1
// (SERVING) until Stop.
func startNoop(addr string) (*noopServer, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("no-op server: %w", err)
	}
	srv := grpc.NewServer(serverOptions()...)
	authv3.RegisterAuthorizationServer(srv, noopCheck{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	s := &noopServer{srv: srv, lis: lis, done: make(chan error, 1)}
	go func() { s.done <- srv.Serve(lis) }()
	return s, nil
}

// Addr is the address the server listens on.
func (s *noopServer) Addr() string { return s.lis.Addr().String() }

// Stop drains calls in flight for up to grace, then closes everything.
func (s *noopServer) Stop(grace time.Duration) error {
	stopped := make(chan struct{})
	go func() {
		s.srv.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(grace):
		s.srv.Stop()
		<-stopped
	}
	if err := <-s.done; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("no-op server: %w", err)
	}
	return nil
}

// cmdNoop is "authz-bench noop": serve the no-op baseline until
// interrupted. It prints "listening on <addr>" on stdout once it accepts
// calls.
func cmdNoop(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("authz-bench noop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (port 0: any free port, printed on stdout)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: authz-bench noop [--addr 127.0.0.1:0]\n\nServes an ext_authz Check that answers OK at once (the baseline), until SIGINT/SIGTERM.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "authz-bench noop: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	s, err := startNoop(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "authz-bench noop: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "listening on %s\n", s.Addr())
	select {
	case <-ctx.Done():
	case err := <-s.done:
		fmt.Fprintf(stderr, "authz-bench noop: %v\n", err)
		return 1
	}
	if err := s.Stop(5 * time.Second); err != nil {
		fmt.Fprintf(stderr, "authz-bench noop: %v\n", err)
		return 1
	}
	return 0
}
