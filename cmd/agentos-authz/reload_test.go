package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentos-authz/agentos-authz/authz/serviceaccount"
	"github.com/agentos-authz/agentos-authz/internal/poll"
)

// writeAtomic replaces path's content by a rename, as editors and
// Kubernetes do.
func writeAtomic(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestServeReloadsOnFileChange: a mapping change in the configuration file
// takes effect without a restart; a broken file keeps the running
// configuration (and says so in the metrics); fixing it applies it.
func TestServeReloadsOnFileChange(t *testing.T) {
	h := newHarness(t)
	secret := strings.Repeat("k", 40)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "hs.secret")
	if err := os.WriteFile(keyFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	base := "os_id: test-os\njwt:\n  algorithms: [HS256]\n  verification_key_files: [" + keyFile + "]\n"
	writeAtomic(t, cfgPath, base)
	r := startServe(t, h, nil, waitTimeout, "--config", cfgPath)
	logs := h.stderr // h.mint replaces h.stderr
	r.waitServing(t)
	tok := "Bearer " + h.mint("--key", keyFile, "--alg", "HS256", "--aud", "test-os", "--sub", "alice", "--scopes", "agents:read")
	status := func() int32 {
		resp, err := r.check(t.Context(), "GET", "/agents", tok)
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetStatus().GetCode()
	}
	if c := status(); c != 0 {
		t.Fatalf("GET /agents before reload: code %d, want OK", c)
	}
	writeAtomic(t, cfgPath, base+"scope_mappings:\n  \"GET /agents\": [agents:write]\n")
	poll.For(t, "the mapping change to apply", func() bool { return status() != 0 })

	writeAtomic(t, cfgPath, base+"unmapped_routes: maybe\n")
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	poll.For(t, "the failed reload to be logged", func() bool {
		return strings.Contains(logs.String(), "configuration reload failed")
	})
	if !strings.Contains(logs.String(), "unmapped_routes") {
		t.Errorf("the failed reload does not name the field:\n%s", logs)
	}
	if c := status(); c == 0 {
		t.Error("a broken file replaced the running configuration")
	}
	if !strings.Contains(r.metrics(t), "agentos_authz_config_current 0") {
		t.Error("agentos_authz_config_current is not 0 after a failed reload")
	}
	writeAtomic(t, cfgPath, base)
	poll.For(t, "the fixed file to apply", func() bool { return status() == 0 })
	if m := r.metrics(t); !strings.Contains(m, "agentos_authz_config_current 1") || !strings.Contains(m, `agentos_authz_config_loads_total{result="failure"} 1`) {
		t.Errorf("reload metrics after recovery:\n%s", grepLines(m, "agentos_authz_config"))
	}
}

// TestServeReloadsConfigMapSwap: a Kubernetes ConfigMap or Secret volume
// swaps a "..data" symlink to a new directory; the key file seen through
// it changes and the rotated key takes effect: the new key is accepted,
// the removed one refused.
func TestServeReloadsConfigMapSwap(t *testing.T) {
	h := newHarness(t)
	vol := t.TempDir()
	oldSecret, newSecret := strings.Repeat("o", 40), strings.Repeat("n", 40)
	gen := func(name, secret string) {
		d := filepath.Join(vol, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "hs.secret"), []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	gen("..2026_01", oldSecret)
	if err := os.Symlink("..2026_01", filepath.Join(vol, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "hs.secret"), filepath.Join(vol, "hs.secret")); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(vol, "hs.secret")
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	writeAtomic(t, cfgPath, "os_id: test-os\njwt:\n  algorithms: [HS256]\n  verification_key_files: ["+keyFile+"]\n")
	r := startServe(t, h, nil, waitTimeout, "--config", cfgPath)
	r.waitServing(t)
	oldKey := filepath.Join(vol, "..2026_01", "hs.secret")
	tokOld := "Bearer " + h.mint("--key", oldKey, "--alg", "HS256", "--aud", "test-os", "--sub", "alice", "--scopes", "agents:read")
	code := func(tok string) int32 {
		resp, err := r.check(t.Context(), "GET", "/agents", tok)
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetStatus().GetCode()
	}
	if c := code(tokOld); c != 0 {
		t.Fatalf("old key before the swap: code %d", c)
	}
	// The swap, as kubelet does it: a new timestamped directory, a new
	// link renamed over ..data.
	gen("..2026_02", newSecret)
	if err := os.Symlink("..2026_02", filepath.Join(vol, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(vol, "..data_tmp"), filepath.Join(vol, "..data")); err != nil {
		t.Fatal(err)
	}
	tokNew := "Bearer " + h.mint("--key", filepath.Join(vol, "..2026_02", "hs.secret"), "--alg", "HS256", "--aud", "test-os", "--sub", "alice", "--scopes", "agents:read")
	poll.For(t, "the rotated key to be accepted", func() bool { return code(tokNew) == 0 })
	if c := code(tokOld); c == 0 {
		t.Error("the removed key is still accepted after the swap")
	}
}

// grepLines keeps the lines of text containing sub.
func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// metrics returns the text of the admin listener's /metrics.
func (r *running) metrics(t *testing.T) string {
	t.Helper()
	status, _, text := httpDo(t, "GET", "http://"+r.adminAddr+"/metrics", nil)
	if status != 200 {
		t.Fatalf("GET /metrics = %d", status)
	}
	return text
}

// saDatabase provisions AgentOS's service-account table in a new SQLite
// file with one account (agents:read) and returns its db_url and token.
func saDatabase(t *testing.T, name string) (url, token string) {
	t.Helper()
	url = "sqlite:///" + filepath.Join(t.TempDir(), name+".db")
	token, err := serviceaccount.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := serviceaccount.Provision(t.Context(), serviceaccount.Config{URL: url},
		serviceaccount.Seed{Name: name, Token: token, Scopes: []string{"agents:read"}}); err != nil {
		t.Fatal(err)
	}
	return url, token
}

// TestServeReloadsServiceAccounts: the service_accounts section reloads
// live (docs/CONTRACT.md §8, README "Operating in production"): enabled
// where it was off, switched from database A to B (B's tokens accepted,
// A's refused), a db_url that cannot be opened keeps B (and never logs
// its password), and disabled again; /readyz's
// service_accounts_database condition follows.
func TestServeReloadsServiceAccounts(t *testing.T) {
	h := newHarness(t)
	urlA, tokA := saDatabase(t, "bot-a")
	urlB, tokB := saDatabase(t, "bot-b")
	cfgPath, base := hs256ConfigFile(t)
	withSA := func(url string) string { return base + "service_accounts:\n  db_url: \"" + url + "\"\n" }
	writeAtomic(t, cfgPath, base)
	r := startServe(t, h, nil, waitTimeout, "--config", cfgPath)
	logs := h.stderr
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	r.waitServing(t)
	ok := func(tok string) bool {
		resp, err := r.check(t.Context(), "GET", "/agents", "Bearer "+tok)
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetStatus().GetCode() == 0
	}
	condition := func() (string, bool) {
		_, body := r.readyz(t)
		c, found := conditionOf(body, condServiceAccounts)
		return c.Detail, found
	}
	if ok(tokA) {
		t.Fatal("A's token accepted with service accounts off")
	}
	if _, found := condition(); found {
		t.Error("/readyz has the service-account condition with service accounts off")
	}

	writeAtomic(t, cfgPath, withSA(urlA))
	poll.For(t, "service accounts enabled live (A)", func() bool { return ok(tokA) })
	// The database is committed (logged, on /readyz) just after the swap
	// that the decisions show.
	poll.For(t, "/readyz service-account condition naming database A", func() bool {
		d, found := condition()
		return found && strings.Contains(d, "bot-a.db")
	})

	writeAtomic(t, cfgPath, withSA(urlB))
	poll.For(t, "database B in service", func() bool { return ok(tokB) })
	if ok(tokA) {
		t.Error("A's token still accepted after the switch to B")
	}
	poll.For(t, "/readyz service-account condition naming database B", func() bool {
		d, _ := condition()
		return strings.Contains(d, "bot-b.db")
	})
	poll.For(t, `the "service-account database reopened" log line`, func() bool {
		return strings.Contains(logs.String(), "service-account database reopened")
	})

	// The URL parses, but its port does not: opening it fails.
	failures := strings.Count(logs.String(), "configuration reload failed")
	writeAtomic(t, cfgPath, withSA("postgresql://authz:hunter2-pw@127.0.0.1:99999/agno"))
	poll.For(t, "the failed reload", func() bool {
		return strings.Count(logs.String(), "configuration reload failed") > failures
	})
	if !ok(tokB) || ok(tokA) {
		t.Error("a db_url that cannot be opened replaced database B")
	}
	if strings.Contains(logs.String(), "hunter2-pw") {
		t.Error("the logs hold the db_url's password")
	}
	if !strings.Contains(logs.String(), "service_accounts.db_url") {
		t.Error("the failed reload does not name service_accounts.db_url")
	}

	writeAtomic(t, cfgPath, base)
	poll.For(t, "service accounts disabled live", func() bool { return !ok(tokB) })
	poll.For(t, "/readyz without the service-account condition once disabled", func() bool {
		_, found := condition()
		return !found
	})
	if restart := grepLines(logs.String(), "needs a restart"); restart != "" {
		t.Errorf("a service-account change was logged as needing a restart:\n%s", restart)
	}
}

// TestServeReloadsShadowMode: switching mode: shadow on and off by a
// reload shows on /readyz and in the decisions, without a restart.
func TestServeReloadsShadowMode(t *testing.T) {
	h := newHarness(t)
	cfgPath, base := hs256ConfigFile(t)
	writeAtomic(t, cfgPath, base)
	r := startServe(t, h, nil, waitTimeout, "--config", cfgPath)
	r.waitServing(t)
	allowed := func() bool { // no credential: 401 unless shadowed
		resp, err := r.check(t.Context(), "GET", "/agents", "")
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetStatus().GetCode() == 0
	}
	shadowShown := func() bool {
		_, body := r.readyz(t)
		_, found := conditionOf(body, condShadow)
		return found
	}
	if allowed() || shadowShown() {
		t.Fatal("enforce mode: a request without a credential allowed, or /readyz shows shadow mode")
	}
	writeAtomic(t, cfgPath, base+"mode: shadow\n")
	poll.For(t, "shadow mode on after a reload", allowed)
	// /readyz follows once the reload is applied, just after the swap.
	poll.For(t, "/readyz shows shadow mode after a reload turned it on", shadowShown)
	if !strings.Contains(h.stderr.String(), "SHADOW MODE") {
		t.Error("no shadow-mode warning logged by the reload")
	}
	writeAtomic(t, cfgPath, base+"mode: enforce\n")
	poll.For(t, "shadow mode off after a reload", func() bool { return !allowed() })
	poll.For(t, "/readyz drops shadow mode after a reload turned it off", func() bool { return !shadowShown() })
}

// hs256ConfigFile returns the path of a configuration file to write in a
// new directory, and a configuration verifying HS256 tokens with a key file
// beside it.
func hs256ConfigFile(t *testing.T) (cfgPath, base string) {
	t.Helper()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "hs.secret")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("k", 40)), 0o600); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "config.yaml"),
		"os_id: test-os\njwt:\n  algorithms: [HS256]\n  verification_key_files: [" + keyFile + "]\n"
}
