package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/envoy"
	"github.com/agentos-authz/agentos-authz/internal/serveconfig"
	authzv1 "github.com/agentos-authz/agentos-authz/proto/agentos/authz/v1"
)

// The policy API (proto/README.md) is served on the admin listener beside
// /healthz, /readyz and /metrics: gRPC over HTTP/2 without TLS (prior
// knowledge, as gRPC clients speak it), told apart from the plain HTTP
// endpoints by its content type. It is never registered on the ext_authz
// gRPC listener, which Envoy and so the network in front of it reach.

// configSource is where the running configuration came from.
type configSource struct {
	path     string // "" when no file was read
	sha256   string // hex SHA-256 of the file's bytes, "" without a file
	loadedAt time.Time
}

// loadConfigSource is loadConfig that also remembers the file's path and
// SHA-256 (of the bytes actually loaded) and the load time.
func loadConfigSource(path string, lookupEnv func(string) (string, bool), flags serveconfig.Flags, now time.Time) (*config, configSource, error) {
	src := configSource{path: path, loadedAt: now}
	text, err := readConfigFile(path)
	if err != nil {
		return nil, src, errors.New("config: " + err.Error())
	}
	if path != "" {
		sum := sha256.Sum256(text)
		src.sha256 = hex.EncodeToString(sum[:])
	}
	cfg, err := loadText(text, lookupEnv, flags)
	return cfg, src, err
}

// newPolicyGRPC returns the gRPC server of the policy API, with reflection.
func newPolicyGRPC(ps *envoy.PolicyServer) *grpc.Server {
	gs := grpc.NewServer()
	authzv1.RegisterPolicyServiceServer(gs, ps)
	reflection.Register(gs)
	return gs
}

// withPolicyAPI sends gRPC requests (HTTP/2, content type application/grpc)
// to gs and everything else to h.
func withPolicyAPI(h http.Handler, gs *grpc.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isGRPC(r) {
			gs.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// isGRPC reports whether r is a gRPC call: HTTP/2 with a gRPC content type.
func isGRPC(r *http.Request) bool {
	return r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc")
}

// adminProtocols are HTTP/1.1 for the health and metrics endpoints and
// unencrypted HTTP/2 for the policy API's gRPC clients.
func adminProtocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return p
}

// policyState is what the policy API describes, or nil when a is not an
// *authz.Authorizer (a test's fake).
func policyState(a authorizer, cfg *config, src configSource) *envoy.PolicyState {
	az, ok := a.(*authz.Authorizer)
	if !ok {
		return nil
	}
	return &envoy.PolicyState{Authorizer: az, Config: cfg.Config, Settings: cfg.Settings, Path: src.path, SHA256: src.sha256, LoadedAt: src.loadedAt}
}

// listenAdmin listens on the admin address, or returns a listener that
// accepts nothing when it is "off" (--admin-addr off): no health, metrics
// or policy API endpoint at all.
func listenAdmin(addr string) (net.Listener, error) {
	if addr == serveconfig.AdminAddrOff {
		return newOffListener(), nil
	}
	return net.Listen("tcp", addr)
}

// offListener is a listener that is off: Accept blocks until Close.
type offListener struct {
	once   sync.Once
	closed chan struct{}
}

func newOffListener() *offListener { return &offListener{closed: make(chan struct{})} }

func (l *offListener) Accept() (net.Conn, error) {
	<-l.closed
	return nil, net.ErrClosed
}

func (l *offListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *offListener) Addr() net.Addr { return offAddr{} }

// offAddr is the address of a listener that is off.
type offAddr struct{}

func (offAddr) Network() string { return "off" }
func (offAddr) String() string  { return serveconfig.AdminAddrOff }
