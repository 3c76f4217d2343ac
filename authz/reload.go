package authz

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	"go.uber.org/zap"

	"github.com/agentos-authz/agentos-authz/authz/internal/jwtauth"
	"github.com/agentos-authz/agentos-authz/authz/serviceaccount"
)

// reloader is the state Reload needs beyond the snapshot: the injected
// options to compile with, the context background work runs under once
// Start was called, and the fingerprint of the running key inputs.
type reloader struct {
	mu      sync.Mutex // serializes Start, Reload and Close
	opts    Options
	bg      context.Context // nil until Start
	keysFP  string          // keyFingerprint of the running snapshot
	stopped bool
}

// ReloadOptions are what Reload needs beyond the configuration: the
// dependencies the caller opens from it.
type ReloadOptions struct {
	// ServiceAccounts verifies agno_pat_ tokens under cfg (docs/CONTRACT.md
	// §8), as Options.ServiceAccounts does for New: required when
	// cfg.ServiceAccounts.db_url is set, ignored otherwise. Pass the running
	// authenticator when the service_accounts section did not change. On
	// success it replaces the running one, whose store the caller may close
	// once Reload has returned: a check already in flight on it finishes
	// (the database drivers let an acquired connection end its query), and
	// one that finds it closed is decided again on the new snapshot. On
	// failure the caller closes what it opened for cfg.
	ServiceAccounts *serviceaccount.Authenticator
}

// Reload compiles cfg into a new snapshot and swaps it in atomically
// (docs/STYLE: build, validate, then store): a check in flight finishes on
// the snapshot it loaded, the next one sees the new. When the JWT key
// inputs are unchanged (the jwt section, the audience and the content of
// every key file), the running verifier and its verified-token cache are
// kept, so a mapping change costs no token a new verification; otherwise a
// new verifier starts (its JWKS URL fetched in the background) and the old
// one is closed after the swap. A configuration that does not compile
// changes nothing and returns every problem, by field. cfg must come from
// Load, which compiled it (and read its files): Reload reads no file.
//
// Settings that cannot change live (listener addresses) are the caller's
// to compare; Reload ignores them. Readiness is never withdrawn (ReadyC).
func (a *Authorizer) Reload(cfg *Config, ro ReloadOptions) (keysChanged bool, err error) {
	if cfg == nil {
		return false, fmt.Errorf("authz: nil configuration")
	}
	if _, err := cfg.loaded(); err != nil {
		return false, err
	}
	a.re.mu.Lock()
	defer a.re.mu.Unlock()
	old := a.snap.Load()
	fp := cfg.compiled.keysFP
	reuse := old != nil && fp == a.re.keysFP
	var keep *jwtauth.Verifier
	var keepCache *tokenCache
	if reuse {
		keep, keepCache = old.verifier, old.cache
	}
	opts := a.re.opts
	opts.ServiceAccounts = ro.ServiceAccounts
	s, err := compileWith(cfg, opts, a.log, keep, keepCache, a.noteReady)
	if err != nil {
		return false, err
	}
	if old != nil {
		// docs/CONTRACT.md §9: a new signing key signs from now on, the
		// previous one stays published (config_upstream.go).
		if s.up, err = compileUpstreamAfter(cfg, &old.up); err != nil {
			return false, err
		}
	}
	if !reuse && s.verifier != nil && a.re.bg != nil && !a.re.stopped {
		s.verifier.Start(a.re.bg)
	}
	a.snap.Store(s)
	a.noteReady()
	a.re.opts = opts
	a.re.keysFP = fp
	if !reuse && old != nil && old.verifier != nil {
		// Checks still on the old snapshot keep answering with its last
		// key set (Verifier.Close); only its background work ends.
		old.verifier.Close()
	}
	a.log.Info("configuration reloaded", zap.Bool("keys_changed", !reuse))
	return !reuse, nil
}

// keyFingerprint identifies the inputs of the JWT verifier and of the
// identity tokens as Load compiled them: the jwt section, the expected
// audience, the digest of every file the verifier's compilation read, and
// the upstream signing key. Equal fingerprints build equal verifiers. It
// never leaves the process (a hash of secrets is still not logged).
func keyFingerprint(cfg *Config, c *compiled) string {
	h := sha256.New()
	vc := cfg.JWT.verifierConfig()
	fmt.Fprintf(h, "%#v\n%q\n", vc, cfg.ExpectedAudience())
	if c.jwt != nil {
		d := c.jwt.Digest()
		fmt.Fprintf(h, "files %x\n", d)
	}
	upstreamFingerprint(h, cfg, c.upstreamKey)
	return hex.EncodeToString(h.Sum(nil))
}
