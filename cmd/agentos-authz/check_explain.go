package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/agentos-authz/agentos-authz/envoy"
	authzv1 "github.com/agentos-authz/agentos-authz/proto/agentos/authz/v1"
)

// explainRemote asks the policy API's Explain (the admin listener) to
// decide the request of spec; ok is false when the address does not serve
// the policy API, so the caller asks Check instead. The headers sent are
// those of envoy.NewCheckRequest, and the service places the token by its
// own configuration through the same function (envoy.ExplainCheckRequest),
// so the request decided is the one check --config decides.
func explainRemote(ctx context.Context, conn *grpc.ClientConn, addr string, spec envoy.RequestSpec, s sys) (int, bool) {
	bare := spec
	bare.Token = ""
	h := envoy.NewCheckRequest(bare).GetAttributes().GetRequest().GetHttp()
	resp, err := authzv1.NewPolicyServiceClient(conn).Explain(ctx, &authzv1.ExplainRequest{
		Method: h.GetMethod(), Path: h.GetPath(), Headers: h.GetHeaders(), Token: spec.Token,
	})
	switch status.Code(err) {
	case codes.OK:
	case codes.Unimplemented:
		return 0, false
	default:
		fmt.Fprintf(s.stderr, "agentos-authz check: ask %s: %v\n", addr, err)
		return exitUsage, true
	}
	printExplained(s.stdout, resp)
	if resp.GetDecision() == authzv1.Decision_DECISION_ALLOW {
		return exitOK, true
	}
	return exitDenied, true
}

// printExplained writes an Explain answer as printDecision writes a local
// decision, with the deciding step of docs/CONTRACT.md §5.
func printExplained(w io.Writer, r *authzv1.ExplainResponse) {
	line := func(k, v string) { fmt.Fprintf(w, "%-9s %s\n", k+":", v) }
	list := func(xs []string) string {
		if len(xs) == 0 {
			return "-"
		}
		return strings.Join(xs, ", ")
	}
	verdict := "deny"
	if r.GetDecision() == authzv1.Decision_DECISION_ALLOW {
		verdict = "allow"
	}
	line("decision", verdict)
	line("status", fmt.Sprint(r.GetStatus()))
	if r.GetDetail() != "" {
		line("detail", r.GetDetail())
	}
	line("reason", r.GetReason())
	if r.GetShadow() {
		line("mode", "shadow (the service lets this request through)")
	}
	line("step", stepText(r.GetStep()))
	rule := r.GetRule()
	if rule == "" {
		rule = "- (no route rule applied)"
	}
	line("rule", rule)
	line("required", list(r.GetRequiredScopes()))
	matched := make([]string, 0, len(r.GetMatchedScopes()))
	for _, m := range r.GetMatchedScopes() {
		matched = append(matched, m.GetRequired()+" (by "+m.GetBy()+")")
	}
	line("matched", list(matched))
	line("missing", list(r.GetMissingScopes()))
	if r.GetUserId() != "" {
		line("user", r.GetUserId())
	}
	if r.GetAuth() != "" {
		line("auth", r.GetAuth())
	}
	for _, h := range r.GetUpstreamHeaders() {
		line("upstream", h.GetName()+": "+h.GetValue())
	}
	if len(r.GetRemovedHeaders()) > 0 {
		line("removed", strings.Join(r.GetRemovedHeaders(), ", "))
	}
}

// stepText names a step of docs/CONTRACT.md §5.
func stepText(s authzv1.Step) string {
	switch s {
	case authzv1.Step_STEP_MALFORMED_REQUEST:
		return "1 (malformed check request)"
	case authzv1.Step_STEP_PATH:
		return "2 (ambiguous path)"
	case authzv1.Step_STEP_PREFLIGHT_OR_EXCLUDED:
		return "3 (preflight or excluded route)"
	case authzv1.Step_STEP_AUTHENTICATION:
		return "4 (authentication)"
	case authzv1.Step_STEP_AUTHORIZATION:
		return "5 (authorization)"
	}
	return "-"
}
