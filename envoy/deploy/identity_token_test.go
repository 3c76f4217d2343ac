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

// checkTraefikAuthorization checks that ForwardAuth copies the reply's
// Authorization onto the request to AgentOS.
func checkTraefikAuthorization(where string, fa *traefikForwardAuth) error {
	if !slices.ContainsFunc(fa.AuthResponseHeaders, func(s string) bool { return strings.EqualFold(s, "Authorization") }) {
		return fmt.Errorf("%s.authResponseHeaders: Authorization is missing: the identity token would not reach AgentOS", where)
	}
	return nil
}
