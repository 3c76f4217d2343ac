package deploy_test

import (
	"fmt"
	"slices"
	"strings"
)

// docs/CONTRACT.md §9: with upstream.identity_token, the HTTP-mode 200
// carries the identity token in Authorization, and every shipped HTTP-mode
// proxy must put it on the request to AgentOS in place of the client's.
// A reply without Authorization must leave the client's unchanged (the
// security key, an excluded route, identity tokens off).

// checkNginxAuthorization checks that the location copies the reply's
// Authorization onto the upstream request through a map that falls back to
// the client's header when the reply has none.
func checkNginxAuthorization(where string, loc *ngxDirective, httpBlock []*ngxDirective) []error {
	var captured string
	for _, d := range children(loc.block, "auth_request_set") {
		if len(d.args) == 2 && d.args[1] == "$upstream_http_authorization" {
			captured = d.args[0]
		}
	}
	if captured == "" {
		return []error{fmt.Errorf("%s: no auth_request_set from $upstream_http_authorization: the identity token would not reach AgentOS", where)}
	}
	set, ok := headerSet(loc)["authorization"]
	if !ok {
		return []error{fmt.Errorf("%s: no proxy_set_header Authorization: the client's token would reach AgentOS instead of the identity token", where)}
	}
	for _, m := range children(httpBlock, "map") {
		if len(m.args) != 2 || m.args[0] != captured || m.args[1] != set {
			continue
		}
		entries := map[string]string{}
		for _, e := range m.block {
			if len(e.args) == 1 {
				entries[e.name] = e.args[0]
			}
		}
		if entries[""] != "$http_authorization" || entries["default"] != captured {
			return []error{fmt.Errorf("%s: map %s %s must give %s when set and $http_authorization otherwise (got %v)", where, captured, set, captured, entries)}
		}
		return nil
	}
	return []error{fmt.Errorf("%s: proxy_set_header Authorization %s: want a map of %s that falls back to $http_authorization, or an empty reply value drops the client's header", where, set, captured)}
}

// identityMiddlewareSuffix names the Traefik middleware for identity
// tokens: it copies the reply's Authorization; every other forwardAuth
// middleware must leave the client's alone.
const identityMiddlewareSuffix = "-identity"

// checkTraefikAuthorization checks that the identity-token middleware
// copies the reply's Authorization onto the request to AgentOS, and that a
// plain one does not: Traefik deletes a listed header the reply lacks, and
// agentos-authz echoes the client's only with identity tokens on.
func checkTraefikAuthorization(name, where string, fa *traefikForwardAuth) error {
	listed := slices.ContainsFunc(fa.AuthResponseHeaders, func(s string) bool { return strings.EqualFold(s, "Authorization") })
	identity := strings.HasSuffix(name, identityMiddlewareSuffix)
	switch {
	case identity && !listed:
		return fmt.Errorf("%s.authResponseHeaders: Authorization is missing: the identity token would not reach AgentOS", where)
	case !identity && listed:
		return fmt.Errorf("%s.authResponseHeaders: Authorization is listed: without identity tokens the reply has none and Traefik would drop the client's (name the middleware *%s for identity tokens)", where, identityMiddlewareSuffix)
	}
	return nil
}

// checkTraefikIdentityMiddleware checks that the shipped file offers the
// identity-token middleware.
func checkTraefikIdentityMiddleware(names []string) error {
	if !slices.ContainsFunc(names, func(n string) bool { return strings.HasSuffix(n, identityMiddlewareSuffix) }) {
		return fmt.Errorf("http.middlewares: no forwardAuth middleware named *%s for upstream.identity_token", identityMiddlewareSuffix)
	}
	return nil
}
