package main

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/envoy"
	"github.com/agentos-authz/agentos-authz/internal/boundedfile"
)

// reloadable is what live reload needs of the authorizer
// (*authz.Authorizer).
type reloadable interface {
	Reload(cfg *authz.Config, ro authz.ReloadOptions) (keysChanged bool, err error)
}

// liveReload reloads the configuration when one of its files changes
// (fsnotify) or on SIGHUP: the configuration file and every file it names
// (key files, the JWKS file, the JWKS CA file). Kubernetes updates
// ConfigMap and Secret volumes by swapping a "..data" symlink in the
// mounted directory, so the directories are watched, not the files, and a
// change is a change of the files' content as read through the links. A
// reload that fails keeps the running snapshot and logs every problem by
// field; settings that cannot change live (listener addresses) are logged
// as needing a restart. The service-account database follows its settings
// (serviceaccounts.go).
type liveReload struct {
	log  *zap.Logger
	load func() (*config, configSource, error)
	// applied is told of each configuration put in service.
	onApplied func(*config, configSource)
	target    reloadable
	sa        *liveServiceAccounts
	running   *config
	loads     interface{ ConfigLoaded(error) }
	gauges    *envoy.ReloadMetrics
	now       func() time.Time
	// hup delivers reload requests (SIGHUP in serve; tests inject).
	hup <-chan os.Signal
	// applied is the content digest of the watched files the running
	// configuration was built from; failed, the last content whose reload
	// failed (not tried again until it changes, or SIGHUP).
	applied, failed [sha256.Size]byte
}

// watchedFiles are the files whose content makes the configuration: the
// configuration file and the files it names.
func watchedFiles(configPath string, cfg *config) []string {
	files := []string{configPath}
	files = append(files, cfg.JWT.VerificationKeyFiles...)
	files = append(files, cfg.JWT.JWKSFile, cfg.JWT.JWKSCAFile)
	// docs/CONTRACT.md §9: the identity-token signing key is reloaded too.
	files = append(files, cfg.Upstream.SigningKeyFile)
	out := files[:0]
	for _, f := range files {
		if f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// digest hashes the content of files, following symlinks as a reader of
// the file would. A file that cannot be read — missing, or not a regular
// file: opening a FIFO would block the watcher for ever — hashes as its
// error; only the first 8 MiB of a file count (every loader refuses more).
func digest(files []string) [sha256.Size]byte {
	h := sha256.New()
	for _, f := range files {
		h.Write([]byte(f + "\x00"))
		if fh, err := boundedfile.Open(f); err == nil {
			_, _ = io.Copy(h, io.LimitReader(fh, 8<<20))
			_ = fh.Close()
		} else {
			h.Write([]byte("\x00" + err.Error()))
		}
		h.Write([]byte{0})
	}
	var out [sha256.Size]byte
	copy(out[:], h.Sum(nil))
	return out
}

// run watches until ctx is done. configPath is the configuration file.
func (l *liveReload) run(ctx context.Context, configPath string) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		l.log.Warn("file watching unavailable; reload with SIGHUP", zap.Error(err))
	}
	var events chan fsnotify.Event
	var errs chan error
	if w != nil {
		defer w.Close()
		events, errs = w.Events, w.Errors
	}
	files := watchedFiles(configPath, l.running)
	l.applied = digest(files)
	watch := func() {
		if w == nil {
			return
		}
		dirs := map[string]bool{}
		for _, f := range files {
			dirs[filepath.Dir(f)] = true
		}
		for _, d := range w.WatchList() {
			if !dirs[d] {
				_ = w.Remove(d)
			}
		}
		for d := range dirs {
			if err := w.Add(d); err != nil {
				l.log.Warn("cannot watch a configuration directory; reload with SIGHUP", zap.String("dir", d), zap.Error(err))
			}
		}
	}
	watch()
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-errs:
			l.log.Warn("file watcher error", zap.Error(err))
		case ev := <-events:
			if ev.Has(fsnotify.Chmod) && !ev.Has(fsnotify.Write) {
				continue
			}
			// A file may change again while it is being reloaded: go on
			// until the content read is the content applied (or failed).
			for i := 0; i < 3; i++ {
				if d := digest(files); d == l.applied || d == l.failed {
					break // another file of the directory, or no change
				}
				files = l.reload(ctx, configPath, files, "file changed")
			}
			watch()
		case <-l.hup:
			files = l.reload(ctx, configPath, files, "SIGHUP")
			watch()
		}
	}
}

// reload loads and applies the configuration; it returns the files to
// watch from now on.
func (l *liveReload) reload(ctx context.Context, configPath string, files []string, why string) []string {
	sum := digest(files)
	cfg, src, err := l.load()
	if err == nil {
		err = l.apply(ctx, cfg)
	}
	l.loads.ConfigLoaded(err)
	now := float64(l.now().UnixNano()) / 1e9
	if err != nil {
		l.failed = sum
		l.gauges.Loaded(false, now)
		l.log.Error("configuration reload failed; the running configuration stays",
			zap.String("trigger", why), zap.Errors("problems", unjoin(err)))
		return files
	}
	l.gauges.Loaded(true, now)
	for _, field := range restartNeeded(l.running, cfg) {
		l.log.Warn("setting changed but needs a restart to take effect", zap.String("field", field))
	}
	for _, w := range cfg.Warnings() {
		l.log.Warn("configuration weakens protection", zap.String("field", w.Field), zap.String("why", w.Msg))
	}
	l.running = cfg
	if l.onApplied != nil {
		l.onApplied(cfg, src)
	}
	next := watchedFiles(configPath, cfg)
	if slices.Equal(next, files) {
		l.applied = sum
	} else {
		// New files to watch: their content now is what was read, unless
		// one changed in between (then the next event reloads again).
		l.applied = digest(next)
	}
	files = next
	l.log.Info("configuration reloaded", zap.String("trigger", why))
	return files
}

// apply puts cfg in service: the service-account database it names is
// readied (opened when its settings changed), then the authorizer swaps
// its snapshot; a replaced database is closed only after the swap, and one
// opened for a reload that fails is closed again, the running one kept.
func (l *liveReload) apply(ctx context.Context, cfg *config) error {
	change, err := l.sa.prepare(ctx, cfg.Config)
	if err != nil {
		return err
	}
	if _, err := l.target.Reload(cfg.Config, authz.ReloadOptions{ServiceAccounts: change.next.authn}); err != nil {
		l.sa.abort(change)
		return err
	}
	l.sa.commit(cfg.Config, change)
	return nil
}

// restartNeeded names the settings of next that differ from running and
// only take effect at start: the listeners, TLS files and tracing.
func restartNeeded(running, next *config) []string {
	var out []string
	for _, s := range []struct {
		field      string
		was, isNow string
	}{
		{"grpc_addr", running.GRPCAddr, next.GRPCAddr},
		{"http_addr", running.HTTPAddr, next.HTTPAddr},
		{"admin_addr", running.AdminAddr, next.AdminAddr},
		{"http.path_prefix", running.HTTP.PathPrefix, next.HTTP.PathPrefix},
		// The certificate files' contents reload by themselves (tls.go);
		// which files, and the tracing exporter, are fixed at start.
		{"tls.cert_file", running.TLS.CertFile, next.TLS.CertFile},
		{"tls.key_file", running.TLS.KeyFile, next.TLS.KeyFile},
		{"tls.client_ca_file", running.TLS.ClientCAFile, next.TLS.ClientCAFile},
		{"tls.admin_client_auth", running.TLS.AdminClientAuth, next.TLS.AdminClientAuth},
		{"tracing.otlp_endpoint", running.Tracing.OTLPEndpoint, next.Tracing.OTLPEndpoint},
		{"tracing.sample_ratio", strconv.FormatFloat(running.Tracing.Ratio(), 'g', -1, 64), strconv.FormatFloat(next.Tracing.Ratio(), 'g', -1, 64)},
		{"tracing.insecure", strconv.FormatBool(running.Tracing.Insecure), strconv.FormatBool(next.Tracing.Insecure)},
	} {
		if s.was != s.isNow {
			out = append(out, s.field)
		}
	}
	return out
}

// unjoin splits an errors.Join into its problems, for one log field each.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// notifyHUP delivers SIGHUP until ctx is done.
func notifyHUP(ctx context.Context) <-chan os.Signal {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	go func() {
		<-ctx.Done()
		signal.Stop(ch)
	}()
	return ch
}

// startLiveReload registers the reload gauges and starts watching under
// ctx; cfg is the running configuration, sa its service-account database.
// The channel returned is closed when the watching has ended (ctx done).
func startLiveReload(ctx context.Context, log *zap.Logger, reg prometheus.Registerer, loads *envoy.Metrics, r reloadable, cfg *config, opts serveOptions, s sys, sa *liveServiceAccounts, onApplied func(*config, configSource)) <-chan struct{} {
	stopped := make(chan struct{})
	gauges, err := envoy.NewReloadMetrics(reg)
	if err != nil {
		log.Warn("reload metrics not registered", zap.Error(err))
		close(stopped)
		return stopped
	}
	gauges.Loaded(true, float64(s.now().UnixNano())/1e9)
	hup := opts.hup
	if hup == nil {
		hup = notifyHUP(ctx)
	}
	l := &liveReload{log: log.Named("reload"), load: opts.reload, onApplied: onApplied, target: r, sa: sa, running: cfg, loads: loads, gauges: gauges, now: s.now, hup: hup}
	go func() {
		defer close(stopped)
		l.run(ctx, opts.configPath)
	}()
	return stopped
}
