package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentos-authz/agentos-authz/authz/serviceaccount"
)

// TestCheckServiceAccount: the offline check reads the configured
// service-account database as serve does (docs/CONTRACT.md §8), and a
// db_url that cannot be read is a configuration error naming the field
// without its password.
func TestCheckServiceAccount(t *testing.T) {
	url := "sqlite:///" + filepath.Join(t.TempDir(), "agno.db")
	tok, err := serviceaccount.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := serviceaccount.Provision(t.Context(), serviceaccount.Config{URL: url},
		serviceaccount.Seed{Name: "ci-bot", Token: tok, Scopes: []string{"agents:read"}}); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, map[string]any{"service_accounts": map[string]any{"db_url": url}})
	for _, c := range []struct {
		path   string
		token  string
		code   int
		stdout string
	}{
		{"/agents", tok, exitOK, "sa:ci-bot"},
		{"/agents/web", tok, exitOK, "service-account"},
		{"/config", tok, exitDenied, "Insufficient permissions"},
		{"/agents", "agno_pat_unknown", exitDenied, "Invalid or expired service account token"},
	} {
		h := newHarness(t)
		code := h.run("check", "--config", cfg, "--token", c.token, "--method", "GET", "--path", c.path)
		if code != c.code || !strings.Contains(h.stdout.String(), c.stdout) {
			t.Errorf("check GET %s = exit %d\n%s%s\nwant exit %d and %q", c.path, code, h.stdout, h.stderr, c.code, c.stdout)
		}
		if strings.Contains(h.stdout.String()+h.stderr.String(), serviceaccount.HashToken(tok)) {
			t.Error("the output holds the token's hash")
		}
	}
	h := newHarness(t)
	bad := writeConfig(t, map[string]any{"service_accounts": map[string]any{"db_url": "mysql://u:hunter2-pw@h/db"}})
	if code := h.run("check", "--config", bad, "--token", tok, "--path", "/agents"); code != exitUsage ||
		!strings.Contains(h.stderr.String(), "service_accounts.db_url") || strings.Contains(h.stderr.String(), "hunter2-pw") {
		t.Errorf("check with a bad db_url = exit %d, stderr %q; want exit 2 naming the field, never the password", code, h.stderr)
	}
}
