package serveconfig

import (
	"fmt"
	"strings"

	"github.com/agentos-authz/agentos-authz/authz"
)

// HTTPConfig is the http: section: how the HTTP ext_authz listener
// (--http-addr, docs/CONTRACT.md §6) reads a check.
type HTTPConfig struct {
	// PathPrefix is Envoy's http_service.path_prefix: Envoy sends the
	// checked path as PathPrefix + path, and the HTTP listener strips it.
	// "" (the default) means no prefix. It applies only to Envoy's HTTP
	// service mode: a path from X-Original-URI (nginx) or X-Forwarded-Uri
	// (Traefik) is the client's own and is never stripped.
	PathPrefix string `yaml:"path_prefix"`
}

// check validates the section; each problem names its field.
func (h *HTTPConfig) check() []error {
	p := h.PathPrefix
	if p == "" {
		return nil
	}
	fail := func(format string, args ...any) []error {
		return []error{&authz.FieldError{Field: "http.path_prefix", Err: fmt.Errorf(format, args...)}}
	}
	switch {
	case p[0] != '/':
		return fail("%q must start with \"/\"", p)
	case len(p) > 1 && p[len(p)-1] == '/':
		// Envoy concatenates: a prefix "/authz/" and the path "/agents"
		// give "/authz//agents"; write the prefix without the slash.
		return fail("%q must not end with \"/\" (Envoy adds the path, which starts with one)", p)
	case p == "/":
		return fail(`"/" is no prefix: leave path_prefix empty`)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= ' ' || c == 0x7f || c == '?' || c == '#' || c == '%' || c == '\\' {
			return fail("%q holds %q: a prefix is plain path characters", p, string(c))
		}
	}
	if strings.Contains(p, "//") || strings.Contains(p+"/", "/./") || strings.Contains(p+"/", "/../") {
		return fail("%q must not hold empty, \".\" or \"..\" segments", p)
	}
	return nil
}
