package harness

import (
	"os/exec"
	"strings"
	"testing"
)

// TestHarnessImportsNoServicePackage holds the package doc's rule: the
// black-box harness (its tests included) depends on none of the service's
// own packages, directly or through another package, so that its model of
// Envoy (BuildRequest) and of the contract stays independent of the code
// it tests. internal/ test support (conformance, poll) is allowed.
func TestHarnessImportsNoServicePackage(t *testing.T) {
	const module = "github.com/agentos-authz/agentos-authz/"
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", "-test", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps -test .: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list -deps -test . listed nothing")
	}
	for _, dep := range deps {
		rest, ok := strings.CutPrefix(dep, module)
		if !ok {
			continue
		}
		if top, _, _ := strings.Cut(rest, "/"); top == "authz" || top == "envoy" || top == "scopes" || top == "cmd" {
			t.Errorf("the harness depends on %s: it must model the service from its documents, not share its code", dep)
		}
	}
}
