package test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
	"github.com/agentos-authz/agentos-authz/internal/poll"
	"github.com/agentos-authz/agentos-authz/test/harness"
)

// TestReload: against the real binary, a mapping change in the file takes
// effect without a restart while checks keep flowing (none fails); a broken
// file keeps the running configuration; SIGHUP reloads on demand (the
// failure is tried again and counted again).
func TestReload(t *testing.T) {
	bin := binary(t)
	secret := strings.Repeat("r", 48)
	keys := conformance.NewKeys(map[string][]byte{"hs.secret": []byte(secret)})
	minter := conformance.Minter{Keys: keys}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "hs.secret")
	if err := os.WriteFile(keyFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	base := "os_id: test-os\njwt:\n  algorithms: [HS256]\n  verification_key_files: [" + keyFile + "]\n"
	replace := func(text string) {
		t.Helper()
		if err := os.WriteFile(cfgPath+".new", []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(cfgPath+".new", cfgPath); err != nil {
			t.Fatal(err)
		}
	}
	replace(base)
	srv, err := harness.Start(t.Context(), harness.Options{Binary: bin, ConfigPath: cfgPath})
	if err != nil {
		t.Fatalf("the server did not start: %v", err)
	}
	t.Cleanup(srv.Kill)
	tok, err := minter.Mint(tokenSpec("alice", "agents:read", "teams:read"))
	if err != nil {
		t.Fatal(err)
	}
	code := func(path string) int32 {
		b, err := harness.BuildRequest(conformance.Request{Method: "GET", Path: path}, map[string]string{"token": tok})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Check(t.Context(), b.Check)
		if err != nil {
			t.Fatalf("Check(%s): %v", path, err)
		}
		return resp.GetStatus().GetCode()
	}

	// Checks on a route both configurations allow never fail meanwhile.
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
				if code("/teams") != 0 {
					failed.Add(1)
				}
			}
		}()
	}
	if c := code("/agents"); c != 0 {
		t.Fatalf("GET /agents before the change: code %d", c)
	}
	replace(base + "scope_mappings:\n  \"GET /agents\": [agents:write]\n")
	poll.For(t, "the mapping change to apply", func() bool { return code("/agents") != 0 })
	replace(base)
	poll.For(t, "the mapping to be restored", func() bool { return code("/agents") == 0 })
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d checks failed while the configuration was reloaded", n)
	}

	failures := func() float64 {
		v, _ := value(scrape(t, srv), "agentos_authz_config_loads_total", map[string]string{"result": "failure"})
		return v
	}
	replace(base + "unmapped_routes: maybe\n")
	poll.For(t, "the broken file to be refused", func() bool { return failures() == 1 })
	if c := code("/agents"); c != 0 {
		t.Errorf("a broken file changed the running configuration: GET /agents code %d", c)
	}
	if err := srv.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	poll.For(t, "SIGHUP to reload (and refuse) the file again", func() bool { return failures() == 2 })
	if cur, _ := value(scrape(t, srv), "agentos_authz_config_current", nil); cur != 0 {
		t.Errorf("agentos_authz_config_current = %v with a broken file, want 0", cur)
	}
	noPanics(t, srv)
}

// TestReloadServiceAccounts: against the real binary, the service_accounts
// section reloads live (README "Reload without restart"): service accounts
// enabled by a file change, then switched from database A to B (B's token
// accepted, A's refused, /readyz names B), and a db_url that cannot be
// opened is refused while B keeps serving.
func TestReloadServiceAccounts(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	database := func(name, token string) string {
		u, err := conformance.WriteSQLiteAccounts(t.Context(), filepath.Join(dir, name+".db"),
			[]conformance.ServiceAccount{{Name: name, Token: token, Scopes: []string{"config:read"}}}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	tokA := "agno_pat_bbReloadA0000000000000000000000000000000001"
	tokB := "agno_pat_bbReloadB0000000000000000000000000000000002"
	urlA, urlB := database("bot-a", tokA), database("bot-b", tokB)
	cfgPath := filepath.Join(dir, "config.yaml")
	base := "os_id: test-os\njwt:\n  algorithms: [HS256]\n  verification_keys: [\"" + randomSecret("reload-") + "\"]\n"
	replace := func(text string) {
		t.Helper()
		if err := os.WriteFile(cfgPath+".new", []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(cfgPath+".new", cfgPath); err != nil {
			t.Fatal(err)
		}
	}
	withSA := func(u string) string { return base + "service_accounts:\n  db_url: \"" + u + "\"\n" }
	replace(base)
	srv, err := harness.Start(t.Context(), harness.Options{Binary: bin, ConfigPath: cfgPath, Env: withQuickExit(nil)})
	if err != nil {
		t.Fatalf("the server did not start: %v", err)
	}
	t.Cleanup(srv.Kill)
	status := func(tok string) int { return saCheck(t, srv, "grpc", tok, "/config", "10.0.0.7").status }

	if s := status(tokA); s != 401 {
		t.Fatalf("A's token with service accounts off = %d, want 401", s)
	}
	replace(withSA(urlA))
	poll.For(t, "service accounts enabled live", func() bool { return status(tokA) == 200 })

	replace(withSA(urlB))
	poll.For(t, "database B to take over", func() bool { return status(tokB) == 200 })
	if s := status(tokA); s != 401 {
		t.Errorf("A's token after the switch to B = %d, want 401", s)
	}
	// /readyz follows once the database is committed, just after the swap.
	poll.For(t, "/readyz naming database B alone", func() bool {
		_, body := readyz(t, srv)
		return strings.Contains(body, "bot-b.db") && !strings.Contains(body, "bot-a.db")
	})

	failures := func() float64 {
		v, _ := value(scrape(t, srv), "agentos_authz_config_loads_total", map[string]string{"result": "failure"})
		return v
	}
	// The URL parses, its port does not: opening the database fails.
	replace(withSA("postgresql://authz:hunter2-pw@127.0.0.1:99999/agno"))
	poll.For(t, "the unopenable db_url to be refused", func() bool { return failures() == 1 })
	if s := status(tokB); s != 200 {
		t.Errorf("B's token after a refused db_url = %d, want 200 (B keeps serving)", s)
	}
	if strings.Contains(srv.Output(), "hunter2-pw") {
		t.Error("the logs hold the db_url's password")
	}
	noPanics(t, srv)
}
