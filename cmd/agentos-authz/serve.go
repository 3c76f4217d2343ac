package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/envoy"
	"github.com/agentos-authz/agentos-authz/internal/serveconfig"
)

// serveOptions are the serve flags that are not configuration, and the
// authorizer constructor (authz.New; tests substitute a fake).
type serveOptions struct {
	dev          *devKit // non-nil with --dev: printed once serving
	drainTimeout time.Duration
	// pprof serves net/http/pprof under /debug/pprof/ on the admin
	// listener (--pprof; off by default).
	pprof    bool
	newAuthz func(cfg *config, opts authz.Options) (authorizer, error)
	// reload loads the configuration again from its sources (nil with
	// --dev: nothing to reload); configPath is its file ("" for none).
	reload     func() (*config, configSource, error)
	configPath string
	// hup delivers reload requests; nil means SIGHUP.
	hup <-chan os.Signal
	// source is where the configuration came from, for the policy API.
	source configSource
}

// authorizer is what serve needs of *authz.Authorizer.
type authorizer interface {
	envoy.Decider
	Ready() bool
}

// cacheSizer is the authorizer's verified-token cache size
// (*authz.Authorizer), exported as a gauge on /metrics.
type cacheSizer interface {
	CacheLen() int
}

// background is the authorizer's background work (*authz.Authorizer: the
// JWKS URL refresh), started with the service and closed when it stops.
type background interface {
	Start(ctx context.Context)
	Close()
}

// newAuthorizer is authz.New behind the authorizer interface.
func newAuthorizer(cfg *config, opts authz.Options) (authorizer, error) {
	a, err := authz.New(cfg.Config, opts)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Timeouts of the lifecycle.
const (
	defaultDrainTimeout = 20 * time.Second
	adminShutdownWait   = 5 * time.Second
	readyPollInterval   = 100 * time.Millisecond
)

// Server limits (README, Security). Every one is explicit, so a client
// (or anyone who reaches the port) cannot make a check cost more than its
// size, hold connections open for nothing, or queue unbounded work.
const (
	// grpcMaxRecvMsgSize bounds one CheckRequest. Envoy's request headers
	// are at most 96 KiB (max_request_headers_kb), plus the body when
	// with_request_body is set (max_request_bytes); a larger message is
	// refused with RESOURCE_EXHAUSTED before it is decoded.
	grpcMaxRecvMsgSize = 1 << 20
	// grpcMaxConcurrentStreams bounds the checks in flight on one
	// connection (Envoy multiplexes its checks over a few).
	grpcMaxConcurrentStreams = 1024
	// grpcKeepaliveMinTime: a client may ping at most this often, even
	// with no check in flight (Envoy's connection_keepalive); more often
	// and the connection is closed (GOAWAY too_many_pings).
	grpcKeepaliveMinTime = 10 * time.Second
	// grpcMaxConnectionIdle closes a connection with no check for this long.
	grpcMaxConnectionIdle = 5 * time.Minute
	// grpcKeepaliveTime / grpcKeepaliveTimeout: an idle connection is
	// pinged after this long and closed if the ping is not answered.
	grpcKeepaliveTime    = 2 * time.Minute
	grpcKeepaliveTimeout = 20 * time.Second
	// grpcConnectionTimeout bounds a new connection's HTTP/2 handshake.
	grpcConnectionTimeout = 10 * time.Second

	// httpMaxHeaderBytes bounds a check's request line and headers on the
	// HTTP ext_authz and admin listeners (net/http answers 431 beyond it).
	// nginx sends the client's headers (at most 4 x 8 KiB by default,
	// large_client_header_buffers) and the request URI; Envoy at most
	// 96 KiB of headers.
	httpMaxHeaderBytes = 128 << 10
	// httpReadHeaderTimeout bounds the time to send the headers (a slow
	// client holds a connection and a goroutine).
	httpReadHeaderTimeout = 5 * time.Second
	// httpIdleTimeout closes idle keep-alive connections (proxies keep
	// pools open).
	httpIdleTimeout = 2 * time.Minute
)

// grpcServerOptions are the gRPC listener's limits.
func grpcServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(grpcMaxRecvMsgSize),
		grpc.MaxConcurrentStreams(grpcMaxConcurrentStreams),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             grpcKeepaliveMinTime,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: grpcMaxConnectionIdle,
			Time:              grpcKeepaliveTime,
			Timeout:           grpcKeepaliveTimeout,
		}),
		grpc.ConnectionTimeout(grpcConnectionTimeout),
	}
}

// runServe parses the serve flags, loads the configuration (or builds the
// --dev one) and serves until ctx is cancelled (SIGTERM/SIGINT): exit 0
// after draining, 1 when a listener fails, 2 on a configuration error.
func runServe(ctx context.Context, args []string, s sys) int {
	fset := newFlagSet("serve", "[flags]",
		"Runs the Envoy ext_authz service: envoy.service.auth.v3.Authorization/Check,\n"+
			"grpc.health.v1 and reflection on --grpc-addr; the HTTP ext_authz service (Envoy HTTP mode,\n"+
			"nginx auth_request, Traefik ForwardAuth) on --http-addr; /healthz, /readyz and /metrics\n"+
			"on --admin-addr.\n"+
			"SIGTERM or SIGINT: health turns NOT_SERVING and /readyz 503, checks are still answered for\n"+
			"--shutdown-delay, then in-flight checks drain, exit 0.\n"+
			"--dev: ephemeral signing key, example tokens on stdout, readable logs;\n"+
			"DEVELOPMENT ONLY (ignores --config, AUTHZ_CONFIG and the JWT/security-key environment).",
		s.stderr)
	cfgPath := fset.String("config", "", "configuration file (default $AUTHZ_CONFIG)")
	grpcAddr := fset.String("grpc-addr", serveconfig.DefaultGRPCAddr, "ext_authz gRPC listener")
	httpAddr := fset.String("http-addr", serveconfig.DefaultHTTPAddr, "HTTP ext_authz listener; off disables it")
	adminAddr := fset.String("admin-addr", serveconfig.DefaultAdminAddr, "admin listener: /healthz, /readyz, /metrics and the policy API (gRPC); off disables it")
	dev := fset.Bool("dev", false, "development mode: ephemeral key, example tokens, console logs")
	logLevel := fset.String("log-level", "info", "log level: debug, info, warn or error (debug with --dev)")
	drain := fset.Duration("drain-timeout", defaultDrainTimeout, "how long in-flight checks may take to finish on shutdown")
	shutdownDelay := fset.Duration("shutdown-delay", 0, "after SIGTERM, keep answering checks this long with health NOT_SERVING before draining (config shutdown_delay; default 0s)")
	pprofOn := fset.Bool("pprof", false, "serve Go profiles (net/http/pprof) under /debug/pprof/ on the admin listener; keep that listener private")
	if code, ok := parseFlags(fset, args); !ok {
		return code
	}
	level, err := zapcore.ParseLevel(*logLevel)
	if err != nil {
		return usageError(fset, "--log-level: %v", err)
	}
	if *dev && !isSet(fset, "log-level") {
		level = zapcore.DebugLevel
	}
	if *drain <= 0 {
		return usageError(fset, "--drain-timeout must be positive")
	}
	// Only the flags given override the file and the environment.
	var flags serveconfig.Flags
	if isSet(fset, "grpc-addr") {
		flags.GRPCAddr = grpcAddr
	}
	if isSet(fset, "http-addr") {
		flags.HTTPAddr = httpAddr
	}
	if isSet(fset, "admin-addr") {
		flags.AdminAddr = adminAddr
	}
	if isSet(fset, "shutdown-delay") {
		flags.ShutdownDelay = shutdownDelay
	}

	var cfg *config
	var kit *devKit
	src := configSource{loadedAt: s.now()}
	if *dev {
		if *cfgPath != "" {
			return usageError(fset, "--dev builds its own configuration; drop --config")
		}
		cfg, kit, err = devSetup(s.now(), flags)
		if kit != nil {
			defer kit.cleanup() // the demo service-account database
		}
	} else {
		cfg, src, err = loadConfigSource(configPath(*cfgPath, s.lookupEnv), s.lookupEnv, flags, s.now())
	}
	if err != nil {
		printConfigError(s.stderr, err)
		return exitUsage
	}
	log := newServiceLogger(s.stderr, *dev, level, cfg.Log)
	defer func() { _ = log.Sync() }()
	if *dev {
		log.Warn("DEVELOPMENT MODE: ephemeral signing key, example tokens on stdout; never use --dev in production")
	}
	if cfg.Shadow() {
		// docs/CONTRACT.md §4 mode: shadow; also a condition on /readyz.
		log.Warn(shadowWarning)
	}
	for _, w := range cfg.Warnings() {
		// docs/CONTRACT.md §4: settings that weaken protection.
		log.Warn("configuration weakens protection", zap.String("field", w.Field), zap.String("why", w.Msg))
	}
	if limit := applyMemoryLimit(s.lookupEnv, cfg.JWT.TokenCacheSize(), cfg.Upstream.IdentityToken); limit > 0 {
		log.Info("soft memory limit sized to jwt.cache_size (GOMEMLIMIT overrides)", zap.Int64("bytes", limit))
	}
	opts := serveOptions{dev: kit, drainTimeout: *drain, pprof: *pprofOn, source: src, newAuthz: newAuthorizer}
	if !*dev {
		opts.configPath = configPath(*cfgPath, s.lookupEnv)
		opts.reload = func() (*config, configSource, error) {
			return loadConfigSource(opts.configPath, s.lookupEnv, flags, s.now())
		}
	}
	return serve(ctx, cfg, log, opts, s)
}

// checkGate is the registered Check service: UNAVAILABLE until the
// authorizer is built (health says NOT_SERVING meanwhile, so Envoy should
// not ask), then the envoy adapter. A not-ready service is a fault of ours,
// not a client-caused outcome, hence a gRPC error rather than a denial.
type checkGate struct {
	authv3.UnimplementedAuthorizationServer
	srv atomic.Pointer[authv3.AuthorizationServer]
}

var _ authv3.AuthorizationServer = (*checkGate)(nil)

func (g *checkGate) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	s := g.srv.Load()
	if s == nil {
		return nil, status.Error(codes.Unavailable, "agentos-authz is starting: configuration and keys not loaded yet")
	}
	return (*s).Check(ctx, req)
}

// serviceNames are the grpc.health.v1 services reported: the server as a
// whole ("") and the Check service.
func serviceNames() []string {
	return []string{"", authv3.Authorization_ServiceDesc.ServiceName}
}

// serve runs the listeners until ctx is done or one fails.
func serve(ctx context.Context, cfg *config, log *zap.Logger, opts serveOptions, s sys) int {
	// tls.go, tracing.go: nil when the tls: / tracing: section is empty.
	secure, err := newListenerTLS(cfg.TLS, log)
	if err != nil {
		printConfigError(s.stderr, err)
		return exitUsage
	}
	tracer, err := newTracing(cfg.Tracing, log)
	if err != nil {
		printConfigError(s.stderr, err)
		return exitUsage
	}
	defer closeTracing(ctx, tracer, log)

	grpcLis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		fmt.Fprintf(s.stderr, "agentos-authz serve: cannot listen for gRPC on %s: %v\n", cfg.GRPCAddr, err)
		return exitFault
	}
	adminLis, err := listenAdmin(cfg.AdminAddr)
	if err != nil {
		grpcLis.Close()
		fmt.Fprintf(s.stderr, "agentos-authz serve: cannot listen for admin HTTP on %s: %v\n", cfg.AdminAddr, err)
		return exitFault
	}
	// docs/CONTRACT.md §6: the HTTP ext_authz listener, unless http_addr is off.
	var httpLis net.Listener
	if cfg.HTTPAddr != serveconfig.HTTPAddrOff {
		httpLis, err = net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			grpcLis.Close()
			adminLis.Close()
			fmt.Fprintf(s.stderr, "agentos-authz serve: cannot listen for HTTP ext_authz on %s: %v\n", cfg.HTTPAddr, err)
			return exitFault
		}
	}
	reg, metrics, err := newMetrics()
	if err != nil {
		grpcLis.Close()
		adminLis.Close()
		if httpLis != nil {
			httpLis.Close()
		}
		fmt.Fprintf(s.stderr, "agentos-authz serve: %v\n", err)
		return exitFault
	}
	if err := secure.registerMetrics(reg); err != nil {
		log.Warn("TLS certificate metric not registered", zap.Error(err))
	}

	// Counts of suppressed denial lines, until every check is answered.
	reportCtx, stopReport := context.WithCancel(context.WithoutCancel(ctx))
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		reportSuppressed(reportCtx, log, suppressedReportInterval)
	}()
	defer func() {
		stopReport()
		<-reported
	}()

	hs := health.NewServer()
	for _, name := range serviceNames() {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	gate := &checkGate{}
	gs := grpc.NewServer(append(grpcServerOptions(), secure.grpcOptions()...)...)
	authv3.RegisterAuthorizationServer(gs, gate)
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)

	// docs/CONTRACT.md §8: the service-account database is opened, not
	// required: the service starts and stays ready while it is down.
	sa, saErr := openServiceAccountsLogged(ctx, cfg, metrics, log)
	defer sa.close()

	life := &lifecycle{}
	// /readyz: every condition registered here must hold.
	var configLoaded, keysLoaded atomic.Bool
	ready := &readyConditions{}
	ready.register(condConfig, flagCondition(&configLoaded, "loading the configuration"))
	ready.register(condKeys, flagCondition(&keysLoaded, "waiting for the verification keys (the JWKS URL's first fetch)"))
	ready.register(condDraining, func() (bool, string) {
		if life.isDraining() {
			return false, "shutting down: health is NOT_SERVING; checks are answered until the drain ends"
		}
		return true, ""
	})
	if cfg.Shadow() {
		ready.register(condShadow, func() (bool, string) { return true, shadowWarning })
	}
	if sa.store != nil {
		// docs/CONTRACT.md §8: information only, always holds (JWT traffic
		// never depends on the service-account database).
		ready.register(condServiceAccounts, sa.readyzCondition)
	}
	// docs/CONTRACT.md §9: the identity-token keys, once the authorizer is built.
	jwks := &jwksHandler{next: adminHandler(ready.serveReadyz, metricsHandler(reg, log), opts.pprof)}
	admin := &http.Server{
		Handler:           jwks,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		MaxHeaderBytes:    httpMaxHeaderBytes,
		IdleTimeout:       httpIdleTimeout,
		ErrorLog:          zap.NewStdLog(log.Named("admin")),
	}
	// The policy API shares the admin listener (admin_api.go).
	policy := envoy.NewPolicyServer()
	policyGRPC := newPolicyGRPC(policy)
	defer policyGRPC.Stop()
	admin.Handler, admin.Protocols = withPolicyAPI(admin.Handler, policyGRPC), secure.protocols(adminProtocols())
	gateHTTP := &httpGate{}
	var checkHTTP *http.Server
	if httpLis != nil {
		checkHTTP = &http.Server{
			Handler: gateHTTP,
			// "OPTIONS *" is a check like any other (the pipeline answers
			// 400 Malformed request path), not net/http's own 200.
			DisableGeneralOptionsHandler: true,
			ReadHeaderTimeout:            httpReadHeaderTimeout,
			MaxHeaderBytes:               httpMaxHeaderBytes,
			IdleTimeout:                  httpIdleTimeout,
			ErrorLog:                     zap.NewStdLog(log.Named("http")),
		}
	}

	type served struct {
		name string
		err  error
	}
	done := make(chan served, 3)
	go func() { done <- served{"grpc", gs.Serve(grpcLis)} }()
	go func() { done <- served{"admin", admin.Serve(secure.wrap(adminLis))} }()
	httpAddr := serveconfig.HTTPAddrOff
	if checkHTTP != nil {
		httpAddr = httpLis.Addr().String()
		go func() { done <- served{"http", checkHTTP.Serve(secure.wrap(httpLis))} }()
	}
	log.Info("listening",
		zap.String("grpc_addr", grpcLis.Addr().String()),
		zap.String("http_addr", httpAddr),
		zap.String("admin_addr", adminLis.Addr().String()))

	code := exitOK
	stopping := false
	var checkHandler http.Handler
	a, err := opts.newAuthz(cfg, authz.Options{Logger: log, Clock: s.now, Observer: metrics, ServiceAccounts: sa.authn})
	if saErr != nil {
		err = saErr
	}
	metrics.ConfigLoaded(err)
	if err != nil {
		printConfigError(s.stderr, err)
		code, stopping = exitUsage, true
	} else {
		configLoaded.Store(true)
		// The JWKS URL fetch and refresh run under ctx until serve
		// returns; readiness (below) waits for the first key set.
		if bg, ok := a.(background); ok {
			bg.Start(ctx)
			defer bg.Close()
		}
		if src, ok := a.(jwksSource); ok {
			jwks.set(src)
		}
		if cs, ok := a.(cacheSizer); ok {
			if err := metrics.TrackCacheSize(cs.CacheLen); err != nil {
				log.Warn("cache size metric not registered", zap.Error(err))
			}
		}
		if r, ok := a.(reloadable); ok && opts.reload != nil {
			startLiveReload(ctx, log, reg, metrics, r, cfg, opts, s, func(cfg *config, src configSource) {
				if st := policyState(a, cfg, src); st != nil {
					policy.Set(st)
				}
			})
		}
		// One Decider for both transports, measured once (/metrics).
		dec := metrics.Decider(a)
		if tracer != nil {
			dec = envoy.TraceDecider(dec, tracer) // one span per check (tracing.go)
		}
		srv := envoy.NewServer(dec)
		gate.srv.Store(&srv)
		checkHandler = envoy.NewHTTPHandler(dec, envoy.HTTPOptions{PathPrefix: cfg.HTTP.PathPrefix, Logger: log.Named("http"),
			// docs/CONTRACT.md §9: with identity tokens, every 200 names the
			// Authorization AgentOS must receive (Traefik's middleware).
			EchoAuthorization: cfg.Upstream.IdentityToken})
		if st := policyState(a, cfg, opts.source); st != nil {
			policy.Set(st)
		}
	}

	if !stopping {
		// waitReady ends with ctx, or with this function (listener failure).
		readyCtx, cancelReady := context.WithCancel(ctx)
		defer cancelReady()
		go waitReady(readyCtx, a, readyPollInterval, func() {
			// HTTP checks are answered from here on: proxies do not
			// consult health first, so 503 (an error, a denial) until
			// the keys are loaded.
			gateHTTP.set(checkHandler)
			keysLoaded.Store(true)
			if !life.serving(hs) {
				return // already draining
			}
			log.Info("serving")
			if opts.dev != nil {
				var httpNetAddr net.Addr
				if httpLis != nil {
					httpNetAddr = httpLis.Addr()
				}
				printDevBanner(s.stdout, opts.dev, grpcLis.Addr(), httpNetAddr, adminLis.Addr())
			}
		})
	}

	for !stopping {
		select {
		case <-ctx.Done():
			stopping = true
		case r := <-done:
			if r.name != "grpc" && errors.Is(r.err, http.ErrServerClosed) {
				continue
			}
			fmt.Fprintf(s.stderr, "agentos-authz serve: %s listener failed: %v\n", r.name, r.err)
			log.Error("listener failed", zap.String("listener", r.name), zap.Error(r.err))
			code, stopping = exitFault, true
		}
	}

	if delay := cfg.ShutdownDelay.Duration; code == exitOK && delay > 0 && keysLoaded.Load() {
		// Only a service that was serving can have proxies still sending
		// it checks; a failed listener stops at once.
		life.drain(hs)
		waitShutdownDelay(log, delay)
	}
	shutdown(ctx, log, gs, checkHTTP, admin, func() { life.drain(hs) }, opts.drainTimeout)
	log.Info("stopped", zap.Int("exit_code", code))
	return code
}

// shutdown drains: readiness off and health NOT_SERVING (notServing), then
// GracefulStop and the HTTP ext_authz server's Shutdown (checkHTTP, nil
// when off) let in-flight checks finish within timeout (then Stop and
// Close cut the rest), then the admin server stops.
func shutdown(ctx context.Context, log *zap.Logger, gs *grpc.Server, checkHTTP, admin *http.Server, notServing func(), timeout time.Duration) {
	notServing()
	log.Info("draining", zap.Duration("timeout", timeout))
	stopped := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(stopped)
	}()
	drainCtx, cancelDrain := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancelDrain()
	httpStopped := make(chan struct{})
	go func() {
		defer close(httpStopped)
		if checkHTTP == nil {
			return
		}
		if err := checkHTTP.Shutdown(drainCtx); err != nil {
			_ = checkHTTP.Close()
		}
	}()
	select {
	case <-stopped:
	case <-drainCtx.Done():
		log.Warn("drain timeout reached; closing the remaining connections")
		gs.Stop()
		<-stopped
	}
	<-httpStopped
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), adminShutdownWait)
	defer cancel()
	if err := admin.Shutdown(shutCtx); err != nil {
		log.Warn("admin server shutdown", zap.Error(err))
		_ = admin.Close()
	}
}

// lifecycle orders the switch to serving against the switch to draining,
// so a late "ready" can never undo a drain.
type lifecycle struct {
	mu       sync.Mutex
	draining bool
}

// isDraining reports whether the drain began (the not_draining condition
// of /readyz).
func (l *lifecycle) isDraining() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.draining
}

// serving reports SERVING on health and readiness, unless draining began;
// it reports whether it did.
func (l *lifecycle) serving(hs *health.Server) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.draining {
		return false
	}
	for _, name := range serviceNames() {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	return true
}

// drain turns readiness off and health NOT_SERVING for good (Shutdown
// ignores later updates).
func (l *lifecycle) drain(hs *health.Server) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.draining = true
	hs.Shutdown()
}

// readiness is what waitReady needs of the authorizer.
type readiness interface{ Ready() bool }

// waitReady calls onReady once r is ready (at once when it already is),
// polling every interval; it gives up when ctx is done.
func waitReady(ctx context.Context, r readiness, interval time.Duration, onReady func()) {
	if r.Ready() {
		onReady()
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if r.Ready() {
				onReady()
				return
			}
		}
	}
}

// adminHandler serves /healthz (200 while the process lives), /readyz
// (readyz: 200 only while serving checks, 503 before and while draining,
// with the readiness conditions as JSON), when
// metrics is not nil, /metrics (docs/CONTRACT.md §2) and, with profiling on
// (--pprof), the Go profiles of net/http/pprof under /debug/pprof/.
// Profiles expose internals (goroutine stacks, heap contents by site) and
// cost CPU while taken: they are off by default, and the admin listener
// must stay private when they are on.
func adminHandler(readyz http.HandlerFunc, metrics http.Handler, profiling bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", readyz)
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	if profiling {
		// Registered on our mux, never on http.DefaultServeMux.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}
