package test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	authzv1 "github.com/agentos-authz/agentos-authz/proto/agentos/authz/v1"
	"github.com/agentos-authz/agentos-authz/test/harness"
)

// The policy API's Explain must decide as Check does (proto/README.md):
// every conformance vector whose request an ExplainRequest can carry is
// also sent to Explain on the admin listener of the same server, and the
// status and detail must equal Check's. A request Explain cannot carry
// (no HTTP attributes, no method or path, a header value that is not
// UTF-8) is decided by Check alone; explainTally counts both kinds.

var explainTally struct {
	sync.Mutex
	compared, notExpressible int
}

// explainSummary is the line TestConformance prints after its own.
func explainSummary() string {
	explainTally.Lock()
	defer explainTally.Unlock()
	return fmt.Sprintf("explain: %d vectors compared with Check, %d not expressible as an ExplainRequest", explainTally.compared, explainTally.notExpressible)
}

// explainRequestOf is the ExplainRequest carrying cr, or false when cr
// cannot be carried.
func explainRequestOf(cr *authv3.CheckRequest) (*authzv1.ExplainRequest, bool) {
	h := cr.GetAttributes().GetRequest().GetHttp()
	if h == nil || h.GetMethod() == "" || h.GetPath() == "" {
		return nil, false
	}
	headers := map[string]string{}
	if lines := h.GetHeaderMap().GetHeaders(); len(lines) > 0 {
		for _, l := range lines {
			v := l.GetValue()
			if raw := l.GetRawValue(); len(raw) > 0 {
				v = string(raw)
			}
			k := strings.ToLower(l.GetKey())
			if prev, ok := headers[k]; ok {
				v = prev + "," + v
			}
			headers[k] = v
		}
	} else {
		for k, v := range h.GetHeaders() {
			headers[k] = v
		}
	}
	for k, v := range headers {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, false
		}
	}
	if !utf8.ValidString(h.GetPath()) || !utf8.ValidString(h.GetMethod()) {
		return nil, false
	}
	return &authzv1.ExplainRequest{Method: h.GetMethod(), Path: h.GetPath(), Headers: headers}, true
}

// checkExplainAgrees asks Explain the vector's request and compares its
// status and detail with Check's outcome o.
func checkExplainAgrees(ctx context.Context, t *testing.T, srv *harness.Server, b harness.Built, o harness.Outcome) {
	t.Helper()
	req, ok := explainRequestOf(b.Check)
	explainTally.Lock()
	if ok {
		explainTally.compared++
	} else {
		explainTally.notExpressible++
	}
	explainTally.Unlock()
	if !ok {
		return
	}
	conn, err := harness.Dial(srv.AdminAddr)
	if err != nil {
		t.Fatalf("dial the admin listener %s: %v", srv.AdminAddr, err)
	}
	defer conn.Close()
	resp, err := authzv1.NewPolicyServiceClient(conn).Explain(ctx, req)
	if err != nil {
		t.Fatalf("%s: Explain RPC on the admin listener failed: %v", b.Describe(), err)
	}
	if resp.GetShadow() {
		// Shadow mode: Explain reports what enforce mode answers; Check lets
		// the request through.
		if resp.GetDecision() != authzv1.Decision_DECISION_ALLOW || !o.Allowed {
			t.Errorf("%s: shadowed Explain decision %s, Check allowed=%v; both must pass", b.Describe(), resp.GetDecision(), o.Allowed)
		}
		return
	}
	if int(resp.GetStatus()) != o.Status || resp.GetDetail() != o.Detail {
		t.Errorf("%s: Explain = %d %q (reason %s, rule %q), Check = %d %q; they must agree",
			b.Describe(), resp.GetStatus(), resp.GetDetail(), resp.GetReason(), resp.GetRule(), o.Status, o.Detail)
	}
	if allowed := resp.GetDecision() == authzv1.Decision_DECISION_ALLOW; allowed != o.Allowed {
		t.Errorf("%s: Explain decision %s, Check allowed=%v", b.Describe(), resp.GetDecision(), o.Allowed)
	}
}
