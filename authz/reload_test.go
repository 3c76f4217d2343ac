package authz

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
)

// loadFile loads the configuration text as serve would.
func loadFile(t *testing.T, text string) *Config {
	t.Helper()
	cfg, err := Load([]byte(text), nil, LoadOptions{})
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	return cfg
}

// TestReload: a mapping change takes effect without touching the keys (the
// verified-token cache is kept); a key rotated in a key file takes effect
// (new key accepted, removed key refused, cache dropped); a configuration
// that does not compile changes nothing.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "hs.secret")
	secretA := strings.Repeat("a", 40)
	secretB := strings.Repeat("b", 40)
	if err := os.WriteFile(keyFile, []byte(secretA), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "os_id: test-os\njwt:\n  algorithms: [HS256]\n  verification_key_files: [" + keyFile + "]\n"
	cfg := loadFile(t, base)
	a, err := New(cfg, Options{Clock: testClock})
	if err != nil {
		t.Fatal(err)
	}
	tokA := mint(t, jwa.HS256, []byte(secretA), user("agents:read"))
	tokB := mint(t, jwa.HS256, []byte(secretB), user("agents:read"))
	decide := func(tok, path string) Decision {
		return a.Decide(t.Context(), &Request{Method: "GET", Path: path, Headers: bearerH(tok)})
	}
	if d := decide(tokA, "/agents"); d.Status != 200 {
		t.Fatalf("before reload: GET /agents = %d %q", d.Status, d.Detail)
	}
	if n := a.CacheLen(); n != 1 {
		t.Fatalf("CacheLen = %d, want 1", n)
	}

	// A mapping change: the keys are the same, the cache stays.
	changed, err := a.Reload(loadFile(t, base+"scope_mappings:\n  \"GET /agents\": [agents:write]\n"), ReloadOptions{})
	if err != nil || changed {
		t.Fatalf("Reload(mapping) = %v, %v; want keys unchanged", changed, err)
	}
	if d := decide(tokA, "/agents"); d.Status != 403 || d.Detail != "Insufficient permissions. Required scope(s): agents:write" {
		t.Errorf("after mapping reload: GET /agents = %d %q, want 403 agents:write", d.Status, d.Detail)
	}
	if n := a.CacheLen(); n != 1 {
		t.Errorf("CacheLen after a mapping reload = %d, want the cache kept (1)", n)
	}

	// A broken file changes nothing: Load refuses it, and a Config that
	// is not what Load compiled is refused by Reload.
	if _, err := a.Reload(loadFile(t, base), ReloadOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Load([]byte(base+"unmapped_routes: maybe\n"), nil, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "unmapped_routes") {
		t.Errorf("Load(bad) = %v, want an unmapped_routes error", err)
	}
	bad := &Config{}
	*bad = *cfg
	bad.UnmappedRoutes = "deny"
	if _, err := a.Reload(bad, ReloadOptions{}); !errors.Is(err, errChangedAfterLoad) {
		t.Errorf("Reload(changed after Load) = %v, want %v", err, errChangedAfterLoad)
	}
	if _, err := a.Reload(&Config{}, ReloadOptions{}); !errors.Is(err, errNotLoaded) {
		t.Errorf("Reload(Config{}) = %v, want %v", err, errNotLoaded)
	}
	if d := decide(tokA, "/agents"); d.Status != 200 {
		t.Errorf("after a failed reload: GET /agents = %d %q, want the old behaviour (200)", d.Status, d.Detail)
	}

	// Key rotation through the file: B accepted, A refused.
	if err := os.WriteFile(keyFile, []byte(secretB), 0o600); err != nil {
		t.Fatal(err)
	}
	changed, err = a.Reload(loadFile(t, base), ReloadOptions{})
	if err != nil || !changed {
		t.Fatalf("Reload(rotated key) = %v, %v; want keys changed", changed, err)
	}
	if d := decide(tokB, "/agents"); d.Status != 200 {
		t.Errorf("new key: GET /agents = %d %q, want 200", d.Status, d.Detail)
	}
	if d := decide(tokA, "/agents"); d.Status != 401 {
		t.Errorf("removed key: GET /agents = %d %q, want 401", d.Status, d.Detail)
	}
}

// TestReloadUnderLoad: checks in flight while the configuration is swapped
// over and over never fail (a token valid in both configurations).
func TestReloadUnderLoad(t *testing.T) {
	base := hsConfig("")
	a := newTestAuthorizer(t, base, nil, nil)
	tok := mintHS(t, user("agents:read"))
	cfgs := []*Config{loadFile(t, base), loadFile(t, base+"scope_mappings:\n  \"GET /custom\": []\n")}
	var failed atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if d := a.Decide(t.Context(), &Request{Method: "GET", Path: "/agents", Headers: bearerH(tok)}); d.Status != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	for i := range 200 {
		if _, err := a.Reload(cfgs[i%2], ReloadOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d checks failed during reloads", n)
	}
}
