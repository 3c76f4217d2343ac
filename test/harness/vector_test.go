package harness

import (
	"encoding/json"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
)

// TestVectorsPrepare prepares every conformance vector as the conformance
// test will — substitution, minting, request building — so a vector the
// harness cannot run fails here, without the binary.
func TestVectorsPrepare(t *testing.T) {
	_, files, keys, err := conformance.Load()
	if err != nil {
		t.Fatal(err)
	}
	m := conformance.Minter{Keys: keys}
	n := 0
	for _, f := range files {
		groups, err := f.Groups()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		for _, g := range groups {
			sub := &conformance.Substituter{Keys: keys, Dir: t.TempDir(), Accounts: g.ServiceAccounts}
			if g.Config != nil {
				out, err := sub.Config(g.Config)
				if err != nil {
					t.Errorf("%s: config: %v", f.Name, err)
				} else if err := yaml.Unmarshal(out, new(any)); err != nil {
					t.Errorf("%s: the config file is not YAML: %v", f.Name, err)
				}
				if strings.Contains(string(out), `"@`) {
					t.Errorf("%s: a placeholder was left in the config:\n%s", f.Name, out)
				}
			}
			if _, err := sub.Env(g.Env); err != nil {
				t.Errorf("%s: env: %v", f.Name, err)
			}
			for _, v := range g.Vectors {
				n++
				if v.Startup() {
					continue
				}
				tokens := map[string]string{}
				for name, spec := range map[string]*conformance.TokenSpec{"token": v.Token, "token2": v.Token2} {
					if spec == nil {
						continue
					}
					tok, err := m.Mint(*spec)
					if err != nil {
						t.Errorf("%s: %s: %v", v.Name, name, err)
					}
					tokens[name] = tok
				}
				b, err := BuildRequest(v.Request, tokens)
				if err != nil {
					t.Errorf("%s: %v", v.Name, err)
					continue
				}
				if _, err := json.Marshal(b.Upstream); err != nil {
					t.Errorf("%s: %v", v.Name, err)
				}
			}
		}
	}
	// The vendored set holds several hundred vectors: a walk that prepares
	// few has stopped reading them.
	if n < 300 {
		t.Errorf("%d vectors prepared, want the whole set", n)
	}
	t.Logf("%d vectors in %d files prepared", n, len(files))
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func ptr[T any](v T) *T { return &v }
