package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"

	"github.com/agentos-authz/agentos-authz/internal/serveconfig"
)

// listenerTLS serves the tls: section (docs/CONTRACT.md §4) on the gRPC,
// HTTP ext_authz and admin listeners: TLS 1.2 at least and, with
// tls.client_ca_file, client certificates required and verified; on the
// admin listener, tls.admin_client_auth: except_health_and_metrics lets
// clients without one reach the probe and metrics endpoints only
// (guardAdmin).
//
// Certificates are reloaded without a restart: every handshake stats the
// files (os.Stat follows symlinks, so a Kubernetes Secret volume's "..data"
// symlink swap shows as a different file) and, when one changed, reads
// them again. A new set that fails (a half-written rotation: the new
// certificate beside the old key) is logged once and the previous set
// keeps being served, to be retried at the next handshake. Handshakes are
// per connection, and Envoy keeps its connections for long, so the stat
// calls cost nothing next to the handshake's own cryptography.
//
// A nil *listenerTLS (tls: not configured) leaves the listeners in
// plaintext.
type listenerTLS struct {
	cfg serveconfig.TLSConfig
	log *zap.Logger

	cur atomic.Pointer[tlsMaterial]
	mu  sync.Mutex // serialises reloads
	// failed are the stamps of the last set that did not load, so its
	// problem is logged once, not at every handshake.
	failed fileStamps
}

// tlsMaterial is one loaded set of certificate files.
type tlsMaterial struct {
	cert   tls.Certificate
	cas    *x509.CertPool // nil without mutual TLS
	stamps fileStamps
}

// fileStamp identifies one version of a file: a rename, a symlink swap or
// a rewrite changes at least one part.
type fileStamp struct {
	info os.FileInfo
	err  error // the file could not be stat'ed
}

func (a fileStamp) same(b fileStamp) bool {
	if a.info == nil || b.info == nil {
		return a.info == nil && b.info == nil && errors.Is(a.err, b.err)
	}
	return os.SameFile(a.info, b.info) && a.info.ModTime().Equal(b.info.ModTime()) && a.info.Size() == b.info.Size()
}

// fileStamps are the stamps of the cert, key and client CA files.
type fileStamps [3]fileStamp

func (a fileStamps) same(b fileStamps) bool {
	for i := range a {
		if !a[i].same(b[i]) {
			return false
		}
	}
	return true
}

// newListenerTLS loads the tls: files; nil (and no error) when the
// section is empty. The error is the configuration's *authz.FieldError.
func newListenerTLS(c serveconfig.TLSConfig, log *zap.Logger) (*listenerTLS, error) {
	if !c.Enabled() {
		return nil, nil
	}
	l := &listenerTLS{cfg: c, log: log.Named("tls")}
	m, err := l.load(l.stat())
	if err != nil {
		return nil, err
	}
	l.cur.Store(m)
	log.Info("TLS on every listener",
		zap.Bool("mutual_tls", c.MutualTLS()),
		zap.Bool("admin_health_and_metrics_open", c.AdminHealthAndMetricsOpen()),
		zap.String("cert_file", c.CertFile),
		zap.Time("cert_not_after", m.cert.Leaf.NotAfter))
	return l, nil
}

func (l *listenerTLS) stat() fileStamps {
	var s fileStamps
	for i, p := range []string{l.cfg.CertFile, l.cfg.KeyFile, l.cfg.ClientCAFile} {
		if p == "" {
			continue
		}
		s[i].info, s[i].err = os.Stat(p)
		if s[i].err != nil {
			s[i].err = errors.Unwrap(s[i].err) // compare by cause, not by text
		}
	}
	return s
}

func (l *listenerTLS) load(stamps fileStamps) (*tlsMaterial, error) {
	cert, err := l.cfg.LoadKeyPair()
	if err != nil {
		return nil, err
	}
	m := &tlsMaterial{cert: cert, stamps: stamps}
	if l.cfg.MutualTLS() {
		if m.cas, err = l.cfg.LoadClientCAs(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// current returns the material to serve, reloading it first when the
// files changed.
func (l *listenerTLS) current() *tlsMaterial {
	m := l.cur.Load()
	stamps := l.stat()
	if stamps.same(m.stamps) {
		return m
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if m = l.cur.Load(); stamps.same(m.stamps) {
		return m // another handshake reloaded meanwhile
	}
	if stamps.same(l.failed) {
		return m
	}
	next, err := l.load(stamps)
	if err != nil {
		l.failed = stamps
		// The error names the field and the file, never key material.
		l.log.Warn("TLS files changed but do not load; serving the previous certificate", zap.Error(err))
		return m
	}
	l.failed = fileStamps{}
	l.cur.Store(next)
	l.log.Info("TLS certificate reloaded",
		zap.String("cert_file", l.cfg.CertFile),
		zap.Time("cert_not_after", next.cert.Leaf.NotAfter))
	return next
}

// clientAuth is the client-certificate policy of the admin listener
// (admin) or of an ext_authz one. Only the admin listener may accept a
// handshake without a certificate, and only with
// tls.admin_client_auth: except_health_and_metrics; a certificate that is
// presented must verify all the same (VerifyClientCertIfGiven), so a bad
// one is refused at the handshake everywhere.
func (l *listenerTLS) clientAuth(admin bool) tls.ClientAuthType {
	switch {
	case !l.cfg.MutualTLS():
		return tls.NoClientCert
	case admin && l.cfg.AdminHealthAndMetricsOpen():
		return tls.VerifyClientCertIfGiven
	default:
		return tls.RequireAndVerifyClientCert
	}
}

// config is the tls.Config of one listener offering nextProtos (ALPN),
// with the client-certificate policy auth.
func (l *listenerTLS) config(nextProtos []string, auth tls.ClientAuthType) *tls.Config {
	base := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
		ClientAuth: auth,
	}
	tmpl := base.Clone()
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		m := l.current()
		c := tmpl.Clone()
		c.Certificates = []tls.Certificate{m.cert}
		c.ClientCAs = m.cas
		return c, nil
	}
	return base
}

// grpcOptions are the gRPC server's transport credentials: none (so
// plaintext) without TLS. grpc-go adds "h2" to the ALPN protocols.
func (l *listenerTLS) grpcOptions() []grpc.ServerOption {
	if l == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(l.config(nil, l.clientAuth(false))))}
}

// MetricTLSExpiry is the expiry of the certificate the listeners serve.
const MetricTLSExpiry = "agentos_authz_tls_certificate_expiry_timestamp_seconds"

// registerMetrics exports the served certificate's expiry on reg (nothing
// without TLS), read at each scrape, which also reloads rotated files:
// alert when it comes near, as when rotations stopped (cert-manager
// failing, or files that no longer load).
func (l *listenerTLS) registerMetrics(reg prometheus.Registerer) error {
	if l == nil {
		return nil
	}
	return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: MetricTLSExpiry,
		Help: "Unix time at which the certificate served on the listeners (tls.cert_file) expires; re-read when the files change.",
	}, func() float64 {
		// current: a scrape also picks up files rotated on disk.
		return float64(l.current().cert.Leaf.NotAfter.Unix())
	}))
}

// protocols adds HTTP/2 over TLS to p (the admin listener's HTTP/1.1 and
// cleartext HTTP/2, which the policy API's gRPC clients use) when the
// listeners serve TLS: a client that negotiates h2 by ALPN must find it.
func (l *listenerTLS) protocols(p *http.Protocols) *http.Protocols {
	if l == nil || p == nil {
		return p
	}
	q := *p
	q.SetHTTP2(true)
	return &q
}

// wrap returns lis serving TLS for an http.Server (HTTP/2 and HTTP/1.1),
// or lis itself without TLS; admin selects the admin listener's
// client-certificate policy (clientAuth). net/http bounds the handshake
// with the server's ReadHeaderTimeout.
func (l *listenerTLS) wrap(lis net.Listener, admin bool) net.Listener {
	if l == nil || lis == nil {
		return lis
	}
	return tls.NewListener(lis, l.config([]string{"h2", "http/1.1"}, l.clientAuth(admin)))
}

// errNoClientCert is the answer of guardAdmin to a client without a
// verified certificate.
const errNoClientCert = "a client certificate is required here (tls.client_ca_file); " +
	"without one, only GET /healthz, /readyz and /metrics answer (tls.admin_client_auth: except_health_and_metrics)"

// guardAdmin returns h, the admin listener's handler, refusing clients
// without a verified certificate everything but GET (and HEAD) of
// /healthz, /readyz and /metrics when tls.admin_client_auth is
// except_health_and_metrics: kubelet's HTTPS probes present no client
// certificate, while the policy API (the running policy, for whoever asks)
// and /debug/pprof/ (goroutine stacks, heap sites) must stay behind mutual
// TLS. A plain HTTP request is answered 403, a gRPC call UNAUTHENTICATED.
// In every other case the handshake has decided already and h is returned.
func (l *listenerTLS) guardAdmin(h http.Handler) http.Handler {
	if l == nil || !l.cfg.AdminHealthAndMetricsOpen() {
		return h
	}
	log := l.log
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if verifiedClient(r.TLS) || openWithoutClientCert(r) {
			h.ServeHTTP(w, r)
			return
		}
		log.Info("admin request without a client certificate refused",
			zap.String("method", r.Method), zap.String("path", r.URL.Path))
		if isGRPC(r) {
			refuseGRPC(w, codes.Unauthenticated, errNoClientCert)
			return
		}
		http.Error(w, errNoClientCert, http.StatusForbidden)
	})
}

// verifiedClient reports whether the connection's client presented a
// certificate that verified against tls.client_ca_file; false without TLS
// (fail closed: guardAdmin only runs on a TLS listener).
func verifiedClient(cs *tls.ConnectionState) bool {
	return cs != nil && len(cs.VerifiedChains) > 0
}

// openWithoutClientCert reports whether r is one of the requests the admin
// listener answers without a client certificate: GET (or HEAD, which
// net/http serves as GET) of the probe and metrics paths, exactly.
func openWithoutClientCert(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	switch r.URL.Path {
	case pathHealthz, pathReadyz, pathMetrics:
		return true
	}
	return false
}

// refuseGRPC answers a gRPC call with code and msg and no message: a
// "trailers-only" response, the status in the headers of an otherwise
// empty HTTP/2 response (msg is printable ASCII without '%', so it needs
// no percent-encoding).
func refuseGRPC(w http.ResponseWriter, code codes.Code, msg string) {
	w.Header().Set("Content-Type", "application/grpc")
	w.Header().Set("Grpc-Status", strconv.Itoa(int(code)))
	w.Header().Set("Grpc-Message", msg)
	w.WriteHeader(http.StatusOK)
}
