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
	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
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

// authorizer is what serve needs of *authz.Authorizer: a Decider, and
// ReadyC closed once it has its keys (never reopened).
type authorizer interface {
	envoy.Decider
	ReadyC() <-chan struct{}
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
)

// HTTP server limits (README, Security); the gRPC listener's are
// envoy.ServerOptions. Every one is explicit, so a client (or anyone who
// reaches the port) cannot make a check cost more than its size, hold
// connections open for nothing, or queue unbounded work.
const (
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
	srv atomic.Pointer[envoy.Server]
}

var _ authv3.AuthorizationServer = (*checkGate)(nil)

func (g *checkGate) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	s := g.srv.Load()
	if s == nil {
		return nil, status.Error(codes.Unavailable, "agentos-authz is starting: configuration and keys not loaded yet")
	}
	return s.Check(ctx, req)
}

// serviceNames are the grpc.health.v1 services reported: the server as a
// whole ("") and the Check service.
func serviceNames() []string {
	return []string{"", authv3.Authorization_ServiceDesc.ServiceName}
}

// serve runs the listeners until ctx is done or one fails.
func serve(ctx context.Context, cfg *config, log *zap.Logger, opts serveOptions, s sys) int {
	return newServer(cfg, log, opts, s).run(ctx)
}

// server is one run of serve. run takes its steps in order (set up TLS and
// tracing, listen, build the servers, open the service-account database,
// register the readiness conditions, serve, build the authorizer, wait,
// drain); the fields carry what a step hands to the next. A server runs
// once.
type server struct {
	cfg  *config
	log  *zap.Logger
	opts serveOptions
	sys  sys

	// closers undo the steps taken, run in reverse order when run returns.
	closers []func()

	secure *listenerTLS             // nil without a tls: section
	tracer *sdktrace.TracerProvider // nil without a tracing: section

	grpcLis, adminLis net.Listener
	httpLis           net.Listener // nil with http_addr: off
	reg               *prometheus.Registry
	metrics           *envoy.Metrics

	hs         *health.Server
	gs         *grpc.Server
	gate       *checkGate
	admin      *http.Server
	checkHTTP  *http.Server // nil with http_addr: off
	gateHTTP   *httpGate
	jwks       *jwksHandler
	policy     *envoy.PolicyServer
	policyGRPC *grpc.Server
	// checkHandler is the HTTP ext_authz handler, put behind gateHTTP once
	// the authorizer is ready.
	checkHandler http.Handler

	sa *liveServiceAccounts
	// shadow is shadow mode as /readyz shows it: set before serving, then
	// only by the reload goroutine.
	shadow bool
	life   lifecycle
	ready  readyConditions
	// configLoaded and keysLoaded are the conditions of the same names on
	// /readyz.
	configLoaded, keysLoaded atomic.Bool
}

// newServer prepares a run of serve with the configuration cfg; run does
// the work.
func newServer(cfg *config, log *zap.Logger, opts serveOptions, s sys) *server {
	return &server{cfg: cfg, log: log, opts: opts, sys: s}
}

// listened is the end of one listener's Serve.
type listened struct {
	name string
	err  error
}

// run serves until ctx is done (exit 0 after the drain) or a listener
// fails (exit 1); a configuration error is exit 2.
func (s *server) run(ctx context.Context) int {
	defer s.close()
	if err := s.setUp(ctx); err != nil {
		printConfigError(s.sys.stderr, err)
		return exitUsage
	}
	if err := s.listen(); err != nil {
		fmt.Fprintf(s.sys.stderr, "agentos-authz serve: %v\n", err)
		return exitFault
	}
	s.reportSuppressed(ctx)
	s.buildServers()
	saErr := s.openServiceAccounts(ctx)
	s.registerReadiness()
	done := s.startServing()

	var code int
	a, err := s.buildAuthorizer(ctx, saErr)
	if err != nil {
		printConfigError(s.sys.stderr, err)
		code = exitUsage
	} else {
		code = s.wait(ctx, done, a.ReadyC())
	}
	s.drain(ctx, code)
	s.log.Info("stopped", zap.Int("exit_code", code))
	return code
}

// onClose adds f to what close undoes.
func (s *server) onClose(f func()) { s.closers = append(s.closers, f) }

// close undoes the steps taken, the last one first.
func (s *server) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// setUp builds the listeners' TLS and the tracing exporter (tls.go,
// tracing.go); an error is a configuration problem.
func (s *server) setUp(ctx context.Context) error {
	var err error
	if s.secure, err = newListenerTLS(s.cfg.TLS, s.log); err != nil {
		return err
	}
	if s.tracer, err = newTracing(s.cfg.Tracing, s.log); err != nil {
		return err
	}
	s.onClose(func() { closeTracing(ctx, s.tracer, s.log) })
	return nil
}

// listen opens the gRPC, admin and (unless http_addr is off) HTTP
// ext_authz listeners and the metrics registry; on failure it closes what
// it opened.
func (s *server) listen() error {
	var err error
	fail := func(format string, args ...any) error {
		for _, l := range []net.Listener{s.grpcLis, s.adminLis, s.httpLis} {
			if l != nil {
				_ = l.Close()
			}
		}
		return fmt.Errorf(format, args...)
	}
	if s.grpcLis, err = net.Listen("tcp", s.cfg.GRPCAddr); err != nil {
		return fail("cannot listen for gRPC on %s: %w", s.cfg.GRPCAddr, err)
	}
	if s.adminLis, err = listenAdmin(s.cfg.AdminAddr); err != nil {
		return fail("cannot listen for admin HTTP on %s: %w", s.cfg.AdminAddr, err)
	}
	// docs/CONTRACT.md §6: the HTTP ext_authz listener, unless http_addr is off.
	if s.cfg.HTTPAddr != serveconfig.HTTPAddrOff {
		if s.httpLis, err = net.Listen("tcp", s.cfg.HTTPAddr); err != nil {
			return fail("cannot listen for HTTP ext_authz on %s: %w", s.cfg.HTTPAddr, err)
		}
	}
	if s.reg, s.metrics, err = newMetrics(); err != nil {
		return fail("%w", err)
	}
	if err := s.secure.registerMetrics(s.reg); err != nil {
		s.log.Warn("TLS certificate metric not registered", zap.Error(err))
	}
	return nil
}

// reportSuppressed logs the counts of suppressed denial lines until every
// check is answered.
func (s *server) reportSuppressed(ctx context.Context) {
	reportCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		reportSuppressed(reportCtx, s.log, suppressedReportInterval)
	}()
	s.onClose(func() {
		stop()
		<-reported
	})
}

// buildServers builds the gRPC server (Check behind its gate, health
// NOT_SERVING, reflection), the admin server (health, readiness, metrics,
// JWKS, profiles, the policy API) and the HTTP ext_authz server behind its
// gate.
func (s *server) buildServers() {
	s.hs = health.NewServer()
	for _, name := range serviceNames() {
		s.hs.SetServingStatus(name, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	s.gate = &checkGate{}
	s.gs = grpc.NewServer(append(envoy.ServerOptions(), s.secure.grpcOptions()...)...)
	authv3.RegisterAuthorizationServer(s.gs, s.gate)
	healthpb.RegisterHealthServer(s.gs, s.hs)
	reflection.Register(s.gs)

	// docs/CONTRACT.md §9: the identity-token keys, once the authorizer is built.
	s.jwks = &jwksHandler{next: adminHandler(s.ready.serveReadyz, metricsHandler(s.reg, s.log), s.opts.pprof)}
	s.admin = &http.Server{
		Handler:           s.jwks,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		MaxHeaderBytes:    httpMaxHeaderBytes,
		IdleTimeout:       httpIdleTimeout,
		ErrorLog:          zap.NewStdLog(s.log.Named("admin")),
	}
	// The policy API shares the admin listener (admin_api.go).
	s.policy = envoy.NewPolicyServer()
	s.policyGRPC = newPolicyGRPC(s.policy)
	s.onClose(s.policyGRPC.Stop)
	// guardAdmin: under mutual TLS with tls.admin_client_auth:
	// except_health_and_metrics, the policy API and pprof need a client
	// certificate that the handshake no longer demands (tls.go).
	s.admin.Handler = s.secure.guardAdmin(withPolicyAPI(s.admin.Handler, s.policyGRPC))
	s.admin.Protocols = s.secure.protocols(adminProtocols())

	s.gateHTTP = &httpGate{}
	if s.httpLis != nil {
		s.checkHTTP = &http.Server{
			Handler: s.gateHTTP,
			// "OPTIONS *" is a check like any other (the pipeline answers
			// 400 Malformed request path), not net/http's own 200.
			DisableGeneralOptionsHandler: true,
			ReadHeaderTimeout:            httpReadHeaderTimeout,
			MaxHeaderBytes:               httpMaxHeaderBytes,
			IdleTimeout:                  httpIdleTimeout,
			ErrorLog:                     zap.NewStdLog(s.log.Named("http")),
		}
	}
}

// openServiceAccounts opens the service-account database when one is
// configured (serviceaccounts.go); it is closed when run returns. The
// error is a configuration problem. docs/CONTRACT.md §8: the database is
// opened, not required: the service starts and stays ready while it is
// down.
func (s *server) openServiceAccounts(ctx context.Context) error {
	s.sa = newLiveServiceAccounts(s.metrics, s.log, &s.ready)
	s.onClose(s.sa.close)
	return s.sa.open(ctx, s.cfg.Config)
}

// registerReadiness registers the conditions of /readyz; every one must
// hold.
func (s *server) registerReadiness() {
	s.ready.register(condConfig, flagCondition(&s.configLoaded, "loading the configuration"))
	s.ready.register(condKeys, flagCondition(&s.keysLoaded, "waiting for the verification keys (the JWKS URL's first fetch)"))
	s.ready.register(condDraining, func() (bool, string) {
		if s.life.isDraining() {
			return false, "shutting down: health is NOT_SERVING; checks are answered until the drain ends"
		}
		return true, ""
	})
	s.setShadow(s.cfg.Shadow())
	// Present while service accounts are configured (serviceaccounts.go).
	s.sa.registerCondition()
}

// setShadow shows shadow mode on /readyz while it is on (docs/CONTRACT.md
// §4 mode: shadow): at start, and after a reload that switches it.
func (s *server) setShadow(on bool) {
	s.shadow = on
	if on {
		s.ready.register(condShadow, func() (bool, string) { return true, shadowWarning })
		return
	}
	s.ready.remove(condShadow)
}

// startServing serves every listener, each on its own goroutine, and logs
// their addresses; each Serve's end arrives on the channel returned.
func (s *server) startServing() <-chan listened {
	done := make(chan listened, 3)
	go func() { done <- listened{"grpc", s.gs.Serve(s.grpcLis)} }()
	go func() { done <- listened{"admin", s.admin.Serve(s.secure.wrap(s.adminLis, true))} }()
	httpAddr := serveconfig.HTTPAddrOff
	if s.checkHTTP != nil {
		httpAddr = s.httpLis.Addr().String()
		go func() { done <- listened{"http", s.checkHTTP.Serve(s.secure.wrap(s.httpLis, false))} }()
	}
	s.log.Info("listening",
		zap.String("grpc_addr", s.grpcLis.Addr().String()),
		zap.String("http_addr", httpAddr),
		zap.String("admin_addr", s.adminLis.Addr().String()))
	return done
}

// buildAuthorizer builds the authorizer of the configuration (saErr: the
// service-account database could not be opened) and puts it to work:
// background work, live reload, both transports and the policy API. An
// error is a configuration problem.
func (s *server) buildAuthorizer(ctx context.Context, saErr error) (authorizer, error) {
	a, err := s.opts.newAuthz(s.cfg, authz.Options{Logger: s.log, Clock: s.sys.now, Observer: s.metrics, ServiceAccounts: s.sa.authn()})
	if saErr != nil {
		err = saErr
	}
	s.metrics.ConfigLoaded(err)
	if err != nil {
		return nil, err
	}
	s.configLoaded.Store(true)
	s.startBackground(ctx, a)
	s.startLiveReload(ctx, a)
	s.serveChecks(a)
	return a, nil
}

// startBackground starts what the authorizer does on its own (the JWKS URL
// fetch and refresh, under ctx until run returns) and exports its JWK Set
// and cache size.
func (s *server) startBackground(ctx context.Context, a authorizer) {
	if bg, ok := a.(background); ok {
		bg.Start(ctx)
		s.onClose(bg.Close)
	}
	if src, ok := a.(jwksSource); ok {
		s.jwks.set(src)
	}
	if cs, ok := a.(cacheSizer); ok {
		if err := s.metrics.TrackCacheSize(cs.CacheLen); err != nil {
			s.log.Warn("cache size metric not registered", zap.Error(err))
		}
	}
}

// startLiveReload watches the configuration (reload.go) until run returns;
// nothing with --dev.
func (s *server) startLiveReload(ctx context.Context, a authorizer) {
	r, ok := a.(reloadable)
	if !ok || s.opts.reload == nil {
		return
	}
	reloadCtx, stop := context.WithCancel(ctx)
	stopped := startLiveReload(reloadCtx, s.log, s.reg, s.metrics, r, s.cfg, s.opts, s.sys, s.sa, func(cfg *config, src configSource) {
		if st := policyState(a, cfg, src); st != nil {
			s.policy.Set(st)
		}
		if cfg.Shadow() != s.shadow {
			if cfg.Shadow() {
				s.log.Warn(shadowWarning)
			} else {
				s.log.Info("shadow mode off: denials are enforced")
			}
			s.setShadow(cfg.Shadow())
		}
	})
	// Before the service-account database is closed: a reload may be
	// replacing it.
	s.onClose(func() {
		stop()
		<-stopped
	})
}

// serveChecks puts the authorizer behind the Check gate and builds the
// HTTP ext_authz handler (served once ready) and the policy API's state.
func (s *server) serveChecks(a authorizer) {
	// One Decider for both transports, measured once (/metrics).
	dec := s.metrics.Decider(a)
	if s.tracer != nil {
		dec = envoy.TraceDecider(dec, s.tracer) // one span per check (tracing.go)
	}
	s.gate.srv.Store(envoy.NewServer(dec))
	s.checkHandler = envoy.NewHTTPHandler(dec, envoy.HTTPOptions{PathPrefix: s.cfg.HTTP.PathPrefix, Logger: s.log.Named("http"),
		// docs/CONTRACT.md §9: with identity tokens, every 200 names the
		// Authorization AgentOS must receive (Traefik's middleware).
		EchoAuthorization: s.cfg.Upstream.IdentityToken})
	if st := policyState(a, s.cfg, s.opts.source); st != nil {
		s.policy.Set(st)
	}
}

// wait serves until ctx is done (exitOK) or a listener fails (exitFault);
// when ready is closed (the authorizer has its keys) it turns to serving.
func (s *server) wait(ctx context.Context, done <-chan listened, ready <-chan struct{}) int {
	for {
		select {
		case <-ctx.Done():
			return exitOK
		case <-ready:
			ready = nil // once
			s.serving()
		case r := <-done:
			if r.name != "grpc" && errors.Is(r.err, http.ErrServerClosed) {
				continue
			}
			fmt.Fprintf(s.sys.stderr, "agentos-authz serve: %s listener failed: %v\n", r.name, r.err)
			s.log.Error("listener failed", zap.String("listener", r.name), zap.Error(r.err))
			return exitFault
		}
	}
}

// serving opens the HTTP ext_authz gate and reports SERVING (unless the
// drain began), then prints the --dev banner.
func (s *server) serving() {
	// HTTP checks are answered from here on: proxies do not consult health
	// first, so 503 (an error, a denial) until the keys are loaded.
	s.gateHTTP.set(s.checkHandler)
	s.keysLoaded.Store(true)
	if !s.life.serving(s.hs) {
		return // already draining
	}
	s.log.Info("serving")
	if s.opts.dev != nil {
		var httpAddr net.Addr
		if s.httpLis != nil {
			httpAddr = s.httpLis.Addr()
		}
		printDevBanner(s.sys.stdout, s.opts.dev, s.grpcLis.Addr(), httpAddr, s.adminLis.Addr())
	}
}

// drain stops serving: after SIGTERM (code exitOK), a service that was
// serving first waits the shutdown delay, NOT_SERVING but still answering;
// then the listeners drain (shutdown).
func (s *server) drain(ctx context.Context, code int) {
	if delay := s.cfg.ShutdownDelay.Duration; code == exitOK && delay > 0 && s.keysLoaded.Load() {
		// Only a service that was serving can have proxies still sending
		// it checks; a failed listener stops at once.
		s.life.drain(s.hs)
		waitShutdownDelay(s.log, delay)
	}
	shutdown(ctx, s.log, s.gs, s.checkHTTP, s.admin, func() { s.life.drain(s.hs) }, s.opts.drainTimeout)
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

// The admin listener's probe and metrics paths (docs/CONTRACT.md §2),
// also the only ones open without a client certificate under
// tls.admin_client_auth: except_health_and_metrics (tls.go).
const (
	pathHealthz = "/healthz"
	pathReadyz  = "/readyz"
	pathMetrics = "/metrics"
)

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
	mux.HandleFunc("GET "+pathHealthz, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET "+pathReadyz, readyz)
	if metrics != nil {
		mux.Handle("GET "+pathMetrics, metrics)
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
