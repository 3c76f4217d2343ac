package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/authz/serviceaccount"
	"github.com/agentos-authz/agentos-authz/internal/serveconfig"
)

// Development mode (serve --dev): an ephemeral key pair lives only in this
// process; its public half configures the service, its private half signs
// the example tokens printed on stdout. Never for production.
const (
	devOSID     = "dev-os"
	devAlg      = "ES256"
	devTokenTTL = 24 * time.Hour
)

// devToken is one printed example token.
type devToken struct {
	envVar string // shell variable the banner exports it as
	note   string
	token  string
}

// devKit is what the banner prints.
type devKit struct {
	alg    string
	tokens []devToken
	// sa is the demo service account (docs/CONTRACT.md §8) in a temporary
	// SQLite file; cleanup removes the file.
	sa      devServiceAccount
	cleanup func()
}

// devSetup generates the ephemeral key, builds the development
// configuration (authorization on, the default route table, os_id dev-os,
// the listeners on loopback unless flags say otherwise) and mints the example tokens. The environment is
// not read: a stray OS_SECURITY_KEY or JWT_VERIFICATION_KEY must not change
// what the banner promises.
func devSetup(now time.Time, flags serveconfig.Flags) (*config, *devKit, error) {
	spec, err := authz.LookupSigningAlgorithm(devAlg)
	if err != nil {
		return nil, nil, err
	}
	key, err := generateKey(spec)
	if err != nil {
		return nil, nil, fmt.Errorf("dev key: %w", err)
	}
	_, pubPEM, err := encodeKeyPair(key)
	if err != nil {
		return nil, nil, fmt.Errorf("dev key: %w", err)
	}
	sa, err := devServiceAccounts()
	if err != nil {
		return nil, nil, err
	}
	// JSON is YAML: the configuration file the --dev service would have.
	text, err := json.Marshal(map[string]any{
		"service_accounts": map[string]any{"db_url": sa.dbURL},
		"os_id":            devOSID,
		"authorization":    true,
		// Loopback unless a flag says otherwise: the example tokens grant
		// everything, so a development service does not face the network.
		"grpc_addr":  "127.0.0.1" + serveconfig.DefaultGRPCAddr,
		"http_addr":  "127.0.0.1" + serveconfig.DefaultHTTPAddr,
		"admin_addr": "127.0.0.1" + serveconfig.DefaultAdminAddr,
		"jwt": map[string]any{
			"verification_keys": []string{string(pubPEM)},
			"algorithms":        []string{devAlg},
		},
	})
	if err != nil {
		return nil, nil, err
	}
	cfg, err := loadText(text, nil, flags)
	if err != nil {
		sa.remove()
		return nil, nil, err
	}
	kit := &devKit{alg: devAlg, sa: sa, cleanup: sa.remove}
	for _, t := range []struct {
		envVar, sub string
		scopes      []string
		ttl         time.Duration
		note        string
	}{
		{"ADMIN_TOKEN", "dev-admin", []string{"agent_os:admin"}, devTokenTTL, "admin: every route"},
		{"READER_TOKEN", "dev-reader", []string{"agents:read"}, devTokenTTL, "scopes: agents:read"},
		{"RUNNER_TOKEN", "dev-runner", []string{"agents:demo:run"}, devTokenTTL, "scopes: agents:demo:run (runs of agent demo only)"},
		{"EXPIRED_TOKEN", "dev-expired", []string{"agents:read"}, -time.Hour, "expired an hour ago"},
	} {
		tok, err := mintToken(spec, key, tokenSpec{
			Subject: t.sub, Audience: []string{devOSID}, Scopes: t.scopes, TTL: t.ttl, Now: now,
		})
		if err != nil {
			sa.remove()
			return nil, nil, fmt.Errorf("dev token %s: %w", t.sub, err)
		}
		kit.tokens = append(kit.tokens, devToken{envVar: t.envVar, note: t.note, token: tok})
	}
	return cfg, kit, nil
}

// dialAddr turns a listener address into one a local client can dial:
// an unspecified host (":9191", "0.0.0.0", "::") becomes 127.0.0.1.
func dialAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// printDevBanner prints the development-only warning, the example tokens
// as shell exports, and commands that try them against this process: check
// commands over gRPC and, unless the HTTP listener is off (httpAddr nil),
// the same requests as curl commands against the HTTP ext_authz mode.
func printDevBanner(w io.Writer, kit *devKit, grpcAddr, httpAddr, adminAddr net.Addr) {
	g, adm := dialAddr(grpcAddr), dialAddr(adminAddr)
	rule := strings.Repeat("!", 78)
	fmt.Fprintln(w, rule)
	for _, line := range []string{
		"DEVELOPMENT MODE - NOT FOR PRODUCTION",
		"An ephemeral " + kit.alg + " key was made for this process only. The tokens",
		"below work until they expire or this process stops. os_id: " + devOSID,
	} {
		fmt.Fprintf(w, "!!  %-72s!!\n", line)
	}
	fmt.Fprintf(w, "%s\n\n", rule)
	fmt.Fprintf(w, "ext_authz gRPC: %s    ready: http://%s/readyz    metrics: http://%s/metrics\n", g, adm, adm)
	if httpAddr != nil {
		fmt.Fprintf(w, "ext_authz HTTP: http://%s\n", dialAddr(httpAddr))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "# Example tokens (paste into another shell):")
	for _, t := range kit.tokens {
		fmt.Fprintf(w, "export %s='%s'   # %s\n", t.envVar, t.token, t.note)
	}
	if kit.sa.token != "" {
		fmt.Fprintf(w, "export %s='%s'   # service account sa:%s (scopes: %s), in %s\n",
			devSATokenVar, kit.sa.token, kit.sa.name, strings.Join(kit.sa.scopes, " "), kit.sa.path)
	}
	tries := []struct{ env, method, path, want string }{
		{"READER_TOKEN", "GET", "/agents", "200"},
		{"RUNNER_TOKEN", "POST", "/agents/demo/runs", "200"},
		{"ADMIN_TOKEN", "DELETE", "/agents/demo", "200"},
		{"", "GET", "/agents", "401 Authorization header missing"},
		{"EXPIRED_TOKEN", "GET", "/agents", "401 Token has expired"},
		{"READER_TOKEN", "POST", "/agents/demo/runs", "403 Required scope(s): agents:run"},
		{"RUNNER_TOKEN", "POST", "/agents/other/runs", "403"},
	}
	if kit.sa.token != "" {
		tries = append(tries,
			struct{ env, method, path, want string }{devSATokenVar, "GET", "/agents", "200 as sa:" + kit.sa.name},
			struct{ env, method, path, want string }{devSATokenVar, "DELETE", "/agents/demo", "403 Insufficient permissions"})
	}
	fmt.Fprintln(w, "\n# Try them:")
	if exe, err := os.Executable(); err == nil {
		// make run serves bin/agentos-authz, which is not on PATH.
		fmt.Fprintf(w, "alias agentos-authz='%s'\n", exe)
	}
	for _, c := range tries {
		tok := ""
		if c.env != "" {
			tok = fmt.Sprintf(` --token "$%s"`, c.env)
		}
		fmt.Fprintf(w, "agentos-authz check --server %s%s --method %s --path %s   # %s\n", g, tok, c.method, c.path, c.want)
	}
	if adminAddr.String() != serveconfig.AdminAddrOff {
		// The policy API on the admin listener explains a decision in full.
		fmt.Fprintln(w, "\n# Why (the policy API's Explain on the admin listener: rule, scopes, step):")
		fmt.Fprintf(w, "agentos-authz check --server %s --token \"$READER_TOKEN\" --method POST --path /agents/demo/runs\n", adm)
	}
	if httpAddr != nil {
		// The HTTP ext_authz mode answers each request as a check of itself
		// (docs/CONTRACT.md §6): 200 with the x-agentos-* headers, or the denial.
		h := dialAddr(httpAddr)
		fmt.Fprintln(w, "\n# The same over HTTP (Envoy HTTP mode, nginx auth_request, Traefik ForwardAuth):")
		for _, c := range tries {
			auth := ""
			if c.env != "" {
				auth = fmt.Sprintf(` -H "Authorization: Bearer $%s"`, c.env)
			}
			fmt.Fprintf(w, "curl -i -X %s%s http://%s%s   # %s\n", c.method, auth, h, c.path, c.want)
		}
	}
	fmt.Fprintln(w)
}

// devSATokenVar is the shell variable of the demo service account's token.
const devSATokenVar = "SA_TOKEN"

// devServiceAccount is the demo service account of serve --dev: AgentOS's
// table in a temporary SQLite file, holding one account, read by the
// service like any AgentOS database (docs/CONTRACT.md §8).
type devServiceAccount struct {
	name   string
	token  string
	scopes []string
	path   string // the SQLite file
	dbURL  string
	dir    string
}

func (d devServiceAccount) remove() {
	if d.dir != "" {
		_ = os.RemoveAll(d.dir)
	}
}

// devProvisionTimeout bounds creating the demo table.
const devProvisionTimeout = 30 * time.Second

func devServiceAccounts() (devServiceAccount, error) {
	dir, err := os.MkdirTemp("", "agentos-authz-dev-")
	if err != nil {
		return devServiceAccount{}, fmt.Errorf("dev service account: %w", err)
	}
	d := devServiceAccount{name: "dev-bot", scopes: []string{"agents:read", "agents:demo:run"}, dir: dir,
		path: filepath.Join(dir, "agno.db")}
	d.dbURL = "sqlite:///" + d.path
	if d.token, err = serviceaccount.NewToken(); err != nil {
		d.remove()
		return devServiceAccount{}, fmt.Errorf("dev service account: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), devProvisionTimeout)
	defer cancel()
	if err := serviceaccount.Provision(ctx, serviceaccount.Config{URL: d.dbURL}, serviceaccount.Seed{
		Name: d.name, Token: d.token, Scopes: d.scopes,
	}); err != nil {
		d.remove()
		return devServiceAccount{}, fmt.Errorf("dev service account: %w", err)
	}
	return d, nil
}
