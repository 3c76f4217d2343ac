package main

import (
	"net/http"
	"strconv"
	"sync/atomic"
)

// jwksPath is where the admin listener publishes the identity-token keys
// (docs/CONTRACT.md §9), for AgentOS's JWT_JWKS_FILE.
const jwksPath = "/.well-known/jwks.json"

// jwksSource is the authorizer's public JWK Set of identity-token signing
// keys (*authz.Authorizer): nil when upstream.identity_token is off.
type jwksSource interface {
	UpstreamJWKS() []byte
}

// jwksHandler serves jwksPath on the admin listener: the current
// configuration's JWK Set, read on every request (so a key rotation is
// published as soon as it is loaded), or 404 while no authorizer is built
// and when identity tokens are off. Every other path goes to next.
type jwksHandler struct {
	src  atomic.Pointer[jwksSource]
	next http.Handler
}

func (h *jwksHandler) set(s jwksSource) { h.src.Store(&s) }

func (h *jwksHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != jwksPath {
		h.next.ServeHTTP(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var set []byte
	if s := h.src.Load(); s != nil {
		set = (*s).UpstreamJWKS()
	}
	if set == nil {
		http.Error(w, "no identity-token keys: upstream.identity_token is off", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(set)))
	// The set changes with a key rotation: a fetcher must not keep it.
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(set)
	}
}
