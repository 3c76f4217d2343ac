package authz

import (
	"testing"
)

// TestDecideKeysNotLoaded: until a JWKS URL's first key set is loaded, a
// token cannot be judged: 503 "Authentication is temporarily unavailable"
// (docs/CONTRACT.md §5), never a 401 for a token that may be valid. The
// routes that need no credential still pass.
func TestDecideKeysNotLoaded(t *testing.T) {
	// Start is never called: no fetch happens, the key set is not loaded.
	a := newTestAuthorizer(t, "os_id: test-os\njwt:\n  algorithms: [HS256]\n  jwks_url: http://127.0.0.1:9/jwks.json\n", nil, nil)
	if a.Ready() {
		t.Fatal("Ready() before the first fetch")
	}
	tok := mintHS(t, user("agents:read"))
	for _, tt := range []struct {
		name   string
		path   string
		hdrs   map[string]string
		status int
		reason Reason
		detail string
	}{
		{name: "token", path: "/agents", hdrs: bearerH(tok), status: 503, reason: ReasonKeysUnavailable, detail: DetailUnavailable},
		{name: "no credential", path: "/agents", status: 401, reason: ReasonMissingCredential, detail: "Authorization header missing"},
		{name: "excluded", path: "/health", hdrs: bearerH(tok), status: 200, reason: ReasonAllowedExcluded},
	} {
		d := a.Decide(t.Context(), &Request{Method: "GET", Path: tt.path, Headers: tt.hdrs})
		if d.Status != tt.status || d.Reason != tt.reason || d.Detail != tt.detail {
			t.Errorf("%s: Decide(GET %s) = %d %s %q, want %d %s %q", tt.name, tt.path, d.Status, d.Reason, d.Detail, tt.status, tt.reason, tt.detail)
		}
	}
}
