package authz

import (
	"fmt"
	"strconv"

	"github.com/agentos-authz/agentos-authz/scopes"
)

// InterfaceConfig is one entry of interfaces: an AgentOS interface mounted
// upstream (docs/CONTRACT.md §5, "Interfaces").
type InterfaceConfig struct {
	// Type is a2a, agui, slack, telegram or whatsapp.
	Type string `yaml:"type"`
	// Prefix is where the interface is mounted; nil means the type's
	// default mount (scopes.DefaultPrefix), "" the root.
	Prefix *string `yaml:"prefix"`
	// Family is agents or teams, for agui only.
	Family string `yaml:"family"`
}

// interfaces resolves the configured interfaces' prefixes for the engine.
func (c *Config) interfaces() []scopes.Interface {
	if len(c.Interfaces) == 0 {
		return nil
	}
	out := make([]scopes.Interface, len(c.Interfaces))
	for i, in := range c.Interfaces {
		p, _ := scopes.DefaultPrefix(in.Type)
		if in.Prefix != nil {
			p = *in.Prefix
		}
		out[i] = scopes.Interface{Type: in.Type, Prefix: p, Family: in.Family}
	}
	return out
}

// excludedRoutes are excluded_routes plus the webhook interfaces' prefixes
// (docs/CONTRACT.md §5: slack, telegram and whatsapp authenticate their own
// webhooks, so "<prefix>/*" joins the excluded routes).
func (c *Config) excludedRoutes() []string {
	out := c.ExcludedRoutes
	for _, in := range c.interfaces() {
		if g := in.Excluded(); g != "" && g[0] == '/' {
			out = append(out[:len(out):len(out)], g)
		}
	}
	return out
}

// checkInterfacePrefixes reports the prefixes that are not normal request
// paths: the engine checks the shape, normalisation is ours (path.go).
func (c *Config) checkInterfacePrefixes() []error {
	var errs []error
	for i, in := range c.Interfaces {
		if in.Prefix == nil || *in.Prefix == "" || (*in.Prefix)[0] != '/' {
			continue // "", or a shape problem scopes.Compile names
		}
		p := *in.Prefix
		if n, ok := normalizePath(p); !ok || (n != p && n+"/" != p) {
			errs = append(errs, &FieldError{Field: "interfaces[" + strconv.Itoa(i) + "].prefix",
				Err: fmt.Errorf("%q is not a normal path (no empty or dot segments, no percent escapes, no control characters)", p)})
		}
	}
	return errs
}
