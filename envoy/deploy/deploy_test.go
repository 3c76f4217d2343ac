// Package deploy_test validates the deployment files under envoy/deploy/ the way the
// systems that consume them would: Envoy bootstraps through go-control-plane's generated
// validators, Istio resources through istio.io/api, Kubernetes manifests through k8s.io/api
// with strict decoding, nginx with nginx -t, and the Dockerfile and Traefik file by the
// rules their tools apply. Each validator returns an error naming the file and field, and
// the negative tests prove that every validator can fail.
//
// This directory holds tests only, in a module of its own (envoy/deploy/go.mod): nothing
// here is imported by the server binary, so istio.io/api, k8s.io/* and the Envoy bootstrap
// and filter types stay out of it and out of the service's go.mod.
package deploy_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readDeployFile returns the content of a file under envoy/deploy/, relative to this directory.
func readDeployFile(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.FromSlash(rel))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return data
}

// mustReplace returns s with old replaced by repl exactly once; it fails the test when old
// does not occur exactly once, so that a mutation test can never pass on a no-op.
func mustReplace(t *testing.T, s, old, repl string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("mutation: %q occurs %d times, want exactly 1", old, n)
	}
	return strings.Replace(s, old, repl, 1)
}

// replaceFirst returns s with the first occurrence of old replaced by repl; it fails the test
// when old does not occur.
func replaceFirst(t *testing.T, s, old, repl string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("mutation: %q does not occur", old)
	}
	return strings.Replace(s, old, repl, 1)
}

var yamlDocSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitYAMLDocuments splits a multi-document YAML stream on "---" lines and drops the
// documents that hold only comments or blank lines.
func splitYAMLDocuments(data []byte) [][]byte {
	var docs [][]byte
	for _, doc := range yamlDocSeparator.Split(string(data), -1) {
		if yamlHasContent(doc) {
			docs = append(docs, []byte(doc))
		}
	}
	return docs
}

func yamlHasContent(doc string) bool {
	for line := range strings.SplitSeq(doc, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return true
		}
	}
	return false
}

// agentosHeaders are the upstream headers of contract §5 that a proxy must let through
// from agentos-authz to AgentOS; x-agentos-claim-email stands for the forward_claims ones.
var agentosHeaders = []string{
	"x-agentos-user-id",
	"x-agentos-session-id",
	"x-agentos-scopes",
	"x-agentos-auth",
	"x-agentos-accessible-ids",
	"x-agentos-claim-email",
}

// forgedAgentosHeaders are client-sent x-agentos-* headers every shipped proxy must
// remove (contract §5): names agentos-authz sets, a forward_claims name, and names it
// never sets, which only a prefix removal catches.
var forgedAgentosHeaders = []string{
	"x-agentos-user-id",
	"x-agentos-scopes",
	"x-agentos-claim-email",
	"x-agentos-claim-role",
	"x-agentos-foo",
}

// spoofableHeaders name the checked request in HTTP mode (contract §6): a proxy must never
// take them from the client, or a caller could have one path checked and another served.
var spoofableHeaders = []string{
	"x-original-uri",
	"x-original-method",
	"x-forwarded-uri",
	"x-forwarded-method",
}

func TestSplitYAMLDocuments(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int
	}{
		{name: "single", in: "a: 1\n", want: 1},
		{name: "two", in: "a: 1\n---\nb: 2\n", want: 2},
		{name: "leading separator and comment-only document", in: "---\n# only a comment\n---\na: 1\n", want: 1},
		{name: "separator with trailing spaces", in: "a: 1\n---  \nb: 2\n", want: 2},
		{name: "dashes inside a value are not a separator", in: "a: |\n  ---x\n", want: 1},
		{name: "empty", in: "\n\n", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := splitYAMLDocuments([]byte(tt.in))
			if len(got) != tt.want {
				t.Errorf("splitYAMLDocuments(%q) = %d documents, want %d", tt.in, len(got), tt.want)
			}
			for _, doc := range got {
				if bytes.Contains(doc, []byte("\n---\n")) {
					t.Errorf("document %q still holds a separator", doc)
				}
			}
		})
	}
}
