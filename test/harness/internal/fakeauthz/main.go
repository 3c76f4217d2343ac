// Command fakeauthz is a tiny stand-in for agentos-authz that the harness's
// own tests run, so the process handling (free ports, health wait, SIGTERM,
// exit codes, draining) is verified without the real service. It is not a
// model of the service's decisions: it allows any request with an
// authorization header and denies the rest with 401.
//
//	fakeauthz serve --config F --grpc-addr A --http-addr off --admin-addr B
//
// A config holding "fake_exit": N makes it print a configuration error
// naming fake_exit and exit N. FAKEAUTHZ_STOP=hard stops without draining
// and FAKEAUTHZ_STOP=silent drains without reporting NOT_SERVING, so the
// harness's own tests can show that it catches both.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) == 0 || args[0] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: fakeauthz serve [flags]")
		return 2
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	config := fs.String("config", "", "config file")
	grpcAddr := fs.String("grpc-addr", ":9191", "gRPC address")
	fs.String("http-addr", "off", "ignored")
	adminAddr := fs.String("admin-addr", ":9090", "admin address")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *config != "" {
		b, err := os.ReadFile(*config)
		if err != nil {
			fmt.Fprintf(os.Stderr, "config: %v\n", err)
			return 2
		}
		var cfg struct {
			FakeExit int `json:"fake_exit"`
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			fmt.Fprintf(os.Stderr, "config: %v\n", err)
			return 2
		}
		if cfg.FakeExit != 0 {
			fmt.Fprintf(os.Stderr, "configuration error: fake_exit: asked to exit %d\n", cfg.FakeExit)
			return cfg.FakeExit
		}
	}

	lis, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	adminLis, err := net.Listen("tcp", *adminAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The harness reads the bound addresses from this line, as from serve's.
	line, _ := json.Marshal(map[string]string{"level": "info", "msg": "listening",
		"grpc_addr": lis.Addr().String(), "http_addr": "off", "admin_addr": adminLis.Addr().String()})
	fmt.Fprintf(os.Stderr, "%s\n", line)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	authv3.RegisterAuthorizationServer(srv, fake{})
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) }
	mux.HandleFunc("/healthz", ok)
	mux.HandleFunc("/readyz", ok)
	admin := &http.Server{Handler: mux}
	go func() { _ = admin.Serve(adminLis) }()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	select {
	case <-ctx.Done():
	case err := <-served:
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	switch os.Getenv("FAKEAUTHZ_STOP") {
	case "hard":
		srv.Stop()
	case "silent":
		srv.GracefulStop()
	default:
		hs.Shutdown()
		srv.GracefulStop()
	}
	_ = admin.Shutdown(context.Background())
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

type fake struct{}

func (fake) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	h := req.GetAttributes().GetRequest().GetHttp()
	if h.GetHeaders()["authorization"] == "" {
		return &authv3.CheckResponse{
			Status: &rpcstatus.Status{Code: int32(codes.Unauthenticated)},
			HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
				Status: &typev3.HttpStatus{Code: typev3.StatusCode_Unauthorized},
				Headers: []*corev3.HeaderValueOption{
					header("content-type", "application/json"),
					header("www-authenticate", "Bearer"),
				},
				Body: `{"detail":"Authorization header missing"}`,
			}},
		}, nil
	}
	var remove []string
	for k := range h.GetHeaders() {
		if strings.HasPrefix(k, "x-agentos-") && k != "x-agentos-user-id" {
			remove = append(remove, k)
		}
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers:         []*corev3.HeaderValueOption{header("x-agentos-user-id", "fake")},
			HeadersToRemove: remove,
		}},
	}, nil
}

func header(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: k, Value: v},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}
