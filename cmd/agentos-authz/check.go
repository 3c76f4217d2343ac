package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/envoy"
	"github.com/agentos-authz/agentos-authz/internal/serveconfig"
)

// headerFlags collects repeated --header "name: value" flags.
type headerFlags []authz.Header

func (h *headerFlags) String() string { return fmt.Sprint(len(*h), " headers") }

func (h *headerFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	name = strings.ToLower(strings.TrimSpace(name))
	if !ok || name == "" {
		return fmt.Errorf("%q is not \"name: value\"", v)
	}
	*h = append(*h, authz.Header{Name: name, Value: strings.TrimSpace(value)})
	return nil
}

// checkTimeout bounds a --server check.
const checkTimeout = 10 * time.Second

// runCheck decides one request, offline through the same authz.Authorizer
// as serve (--config), or by asking a running service over gRPC
// (--server). Exit 0 allow, 1 deny, 2 when no decision could be made.
func runCheck(ctx context.Context, args []string, s sys) int {
	fset := newFlagSet("check", "[--config F | --server ADDR] --token T --method M --path P",
		"Decides one request and prints the decision and why: the status, the detail, the\n"+
			"route rule, and the required, matched and missing scopes. Offline by default, with\n"+
			"the configuration of --config (or AUTHZ_CONFIG) and the environment, exactly as\n"+
			"serve would; with --server it asks a running service over gRPC instead: its admin\n"+
			"address answers with the full explanation (the policy API's Explain), its ext_authz\n"+
			"gRPC address with what Envoy would do (Check).\n"+
			"Exit status: 0 allowed, 1 denied, 2 no decision (bad flags, invalid configuration,\n"+
			"service unreachable). The token is never printed.",
		s.stderr)
	cfgPath := fset.String("config", "", "configuration file (default $AUTHZ_CONFIG)")
	server := fset.String("server", "", "ask the service at this address (admin: full explanation; ext_authz gRPC: Check) instead of deciding offline")
	token := fset.String("token", "", "the token, sent as the configured credential; - reads it from stdin")
	method := fset.String("method", "GET", "HTTP method as the client sends it (case kept: only OPTIONS is a preflight)")
	path := fset.String("path", "/", "request path as the proxy sends it, query included")
	var extra headerFlags
	fset.Var(&extra, "header", "extra request header \"name: value\" (repeatable), e.g. \"origin: https://app\"")
	var ct clientTLS
	ct.register(fset)
	if code, ok := parseFlags(fset, args); !ok {
		return code
	}
	if *server != "" && *cfgPath != "" {
		return usageError(fset, "--config and --server are alternatives: give one")
	}
	if err := ct.check(*server != ""); err != nil {
		return usageError(fset, "%v", err)
	}
	tok := *token
	if tok == "-" {
		var err error
		if tok, err = readToken(s.stdin); err != nil {
			fmt.Fprintf(s.stderr, "agentos-authz check: --token -: %v\n", err)
			return exitUsage
		}
	}
	// The request as a client would send it through Envoy, method case
	// included: "options" is no preflight for the service (docs/CONTRACT.md
	// §5 step 3), so it is none here either. Offline and --server build the
	// same CheckRequest from it (envoy.NewCheckRequest).
	spec := envoy.RequestSpec{
		Method: *method, Path: *path, Headers: extra, Token: tok,
		// Envoy always sends one; it ties the service's log line to this run.
		RequestID: "agentos-authz-check-" + randomHex(8),
	}
	if *server != "" {
		return checkRemote(ctx, *server, &ct, spec, s)
	}
	return checkOffline(ctx, configPath(*cfgPath, s.lookupEnv), spec, s)
}

// readToken reads the first line of r, trimmed.
func readToken(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 1<<20)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	tok := strings.TrimSpace(line)
	if tok == "" {
		return "", errors.New("no token on standard input")
	}
	return tok, nil
}

// checkJWKSWait bounds how long check waits for a JWKS URL (one fetch
// times out after 5 s; discovery adds one more).
const checkJWKSWait = 12 * time.Second

func checkOffline(ctx context.Context, cfgPath string, spec envoy.RequestSpec, s sys) int {
	cfg, err := loadConfig(cfgPath, s.lookupEnv, serveconfig.Flags{})
	if err != nil {
		printConfigError(s.stderr, err)
		return exitUsage
	}
	// docs/CONTRACT.md §8: a service-account token is looked up in the
	// configured database, read-only, as serve would.
	sa, err := openServiceAccounts(ctx, cfg.Config, nil)
	if err != nil {
		printConfigError(s.stderr, err)
		return exitUsage
	}
	defer sa.close()
	a, err := authz.New(cfg.Config, authz.Options{Logger: zap.NewNop(), Clock: s.now, ServiceAccounts: sa.authn})
	if err != nil {
		printConfigError(s.stderr, err)
		return exitUsage
	}
	if cfg.JWT.RemoteJWKS() {
		// A JWKS URL (or OIDC discovery) is fetched for this one decision.
		a.Start(ctx)
		defer a.Close()
		wait, cancel := context.WithTimeout(ctx, checkJWKSWait)
		select {
		case <-a.ReadyC():
		case <-wait.Done():
		}
		cancel()
		if !a.Ready() {
			fmt.Fprintf(s.stderr, "agentos-authz check: the JWKS was not loaded within %s; deciding with the static keys only\n", checkJWKSWait)
		}
	}
	// The path a served request takes: the CheckRequest Envoy would send,
	// its translation, then the decision (explained).
	spec.Config = cfg.Config
	r := envoy.FromCheckRequest(envoy.NewCheckRequest(spec))
	d := a.Explain(ctx, &r)
	printDecision(s.stdout, &d)
	if d.Allowed() {
		return exitOK
	}
	return exitDenied
}

// printDecision writes the decision and its explanation, one "key: value"
// per line. A Decision never holds the token.
func printDecision(w io.Writer, d *authz.Decision) {
	verdict := "deny"
	if d.Allowed() {
		verdict = "allow"
	}
	line := func(k, v string) { fmt.Fprintf(w, "%-9s %s\n", k+":", v) }
	list := func(xs []string) string {
		if len(xs) == 0 {
			return "-"
		}
		return strings.Join(xs, ", ")
	}
	line("decision", verdict)
	line("status", fmt.Sprint(d.Status))
	if d.Detail != "" {
		line("detail", d.Detail)
	}
	line("reason", d.Reason.String())
	if d.Shadow {
		// mode: shadow: the decision above is reported, not enforced; the
		// exit status still follows it, so rules can be tested offline.
		line("mode", "shadow (the service lets this request through)")
	}
	rule := d.Rule
	if rule == "" {
		rule = "- (no route rule applied)"
	}
	line("rule", rule)
	line("required", list(d.Required))
	matched := make([]string, len(d.Matched))
	for i, m := range d.Matched {
		matched[i] = m.Required + " (by " + m.By + ")"
	}
	line("matched", list(matched))
	line("missing", list(d.Missing))
	if d.UserID != "" {
		line("user", d.UserID)
	}
	if d.Auth != "" {
		line("auth", d.Auth)
	}
	for _, h := range d.Upstream {
		if h.Name == authz.HeaderAuthorization {
			// docs/CONTRACT.md §9: a signed identity token is a
			// credential; say that it is sent, never print it.
			line("upstream", h.Name+": Bearer <identity token signed by this service>")
			continue
		}
		line("upstream", h.Name+": "+h.Value)
	}
	if len(d.Remove) > 0 {
		line("removed", strings.Join(d.Remove, ", "))
	}
}

// checkRemote sends the request as an Envoy CheckRequest to a running
// service and prints its answer.
func checkRemote(ctx context.Context, addr string, ct *clientTLS, spec envoy.RequestSpec, s sys) int {
	creds, err := ct.credentials()
	if err != nil {
		fmt.Fprintf(s.stderr, "agentos-authz check: %v\n", err)
		return exitUsage
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		fmt.Fprintf(s.stderr, "agentos-authz check: --server %s: %v\n", addr, err)
		return exitUsage
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	// The admin listener serves the policy API: its Explain gives the full
	// explanation. The ext_authz listener does not (Unimplemented): ask
	// its Check, which says only what Envoy would do.
	if code, ok := explainRemote(ctx, conn, addr, spec, s); ok {
		return code
	}
	// The service's configuration is unknown here: spec.Config stays nil and
	// the token goes where the defaults look, the authorization header and
	// the access_token cookie.
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, envoy.NewCheckRequest(spec))
	if err != nil {
		fmt.Fprintf(s.stderr, "agentos-authz check: ask %s: %v\n", addr, err)
		return exitUsage
	}
	return printCheckResponse(s.stdout, resp)
}

// printCheckResponse prints what Envoy would do with resp and returns the
// exit status for it.
func printCheckResponse(w io.Writer, resp *authv3.CheckResponse) int {
	line := func(k, v string) { fmt.Fprintf(w, "%-9s %s\n", k+":", v) }
	code := codes.Code(resp.GetStatus().GetCode())
	if code == codes.OK {
		line("decision", "allow")
		line("status", "200")
		for _, h := range resp.GetOkResponse().GetHeaders() {
			line("upstream", h.GetHeader().GetKey()+": "+headerText(h.GetHeader().GetValue(), h.GetHeader().GetRawValue()))
		}
		if rm := resp.GetOkResponse().GetHeadersToRemove(); len(rm) > 0 {
			line("removed", strings.Join(rm, ", "))
		}
		return exitOK
	}
	dr := resp.GetDeniedResponse()
	line("decision", "deny")
	status := int(dr.GetStatus().GetCode())
	if status == 0 {
		status = 403 // Envoy's default for a denial without a status
	}
	line("status", fmt.Sprint(status))
	var body struct {
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal([]byte(dr.GetBody()), &body); err == nil && body.Detail != "" {
		line("detail", body.Detail)
	} else if dr.GetBody() != "" {
		line("body", dr.GetBody())
	}
	line("grpc", code.String())
	for _, h := range dr.GetHeaders() {
		line("header", h.GetHeader().GetKey()+": "+headerText(h.GetHeader().GetValue(), h.GetHeader().GetRawValue()))
	}
	return exitDenied
}

// randomHex returns 2n random hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

func headerText(value string, raw []byte) string {
	if len(raw) > 0 {
		return fmt.Sprintf("%q", raw)
	}
	return value
}
