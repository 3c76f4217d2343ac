package main

import "runtime/debug"

// The soft memory limit of serve, sized to the verified-token cache. Go's
// default GC (GOGC=100) lets the heap grow to twice the live heap; with a
// soft limit the collector works harder near the limit instead, so a full
// cache of 100k tokens (≈224 B each, live) stays within 64 MiB RSS
// (the performance budget; measured in the README). It is soft: a heap that
// outgrows it costs GC CPU (capped by the runtime at about half), never an
// out-of-memory kill.
const (
	// memLimitBase is everything but the cache: runtime, gRPC buffers,
	// route table, keys.
	memLimitBase = 28 << 20
	// memLimitPerToken is the live heap of one cached token, rounded up.
	memLimitPerToken = 240
	// memLimitPerIdentityToken is what a cached token adds with
	// upstream.identity_token (docs/CONTRACT.md §9): the identity token
	// kept beside it, ≈860 B for an RS256 token with five scopes (755 B of
	// header value, its slot and holder), rounded up.
	memLimitPerIdentityToken = 1024
)

// memoryLimit is the soft limit for a cache of cacheSize tokens.
func memoryLimit(cacheSize int) int64 {
	if cacheSize < 0 {
		cacheSize = 0
	}
	return memLimitBase + int64(cacheSize)*memLimitPerToken
}

// identityMemoryLimit is memoryLimit with identity tokens kept beside the
// cached tokens.
func identityMemoryLimit(cacheSize int) int64 {
	return memoryLimit(cacheSize) + int64(max(cacheSize, 0))*memLimitPerIdentityToken
}

// applyMemoryLimit sets the soft memory limit for cacheSize unless the
// operator set GOMEMLIMIT, whose value the runtime already applies. It
// returns the limit it set, or 0.
func applyMemoryLimit(lookupEnv func(string) (string, bool), cacheSize int, identityTokens bool) int64 {
	if v, ok := lookupEnv("GOMEMLIMIT"); ok && v != "" {
		return 0
	}
	limit := memoryLimit(cacheSize)
	if identityTokens {
		limit = identityMemoryLimit(cacheSize)
	}
	debug.SetMemoryLimit(limit)
	return limit
}
