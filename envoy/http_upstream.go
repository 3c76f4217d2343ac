package envoy

import (
	"net/http"

	"github.com/agentos-authz/agentos-authz/authz"
)

// passAuthorization makes the Authorization of an allowed HTTP-mode reply
// the one the upstream must receive (docs/CONTRACT.md §9): the identity
// token when the decision re-issued one, else the caller's own, echoed.
// It runs only with HTTPOptions.EchoAuthorization (identity tokens on).
//
// The echo is for Traefik's identity-token middleware: a header listed in
// ForwardAuth's authResponseHeaders is deleted from the forwarded request
// before the reply's value is copied, so a reply without Authorization
// would strip the caller's (the security key, a service-account token, an
// excluded route, a preflight). nginx and Envoy set the same value again.
// The reply goes to the proxy only (none of them passes a 200's headers to
// the client).
// A caller that sent Authorization more than once gets no echo: which
// line the upstream should see is not ours to pick.
func passAuthorization(d *authz.Decision, h http.Header) {
	if !d.Allowed() {
		return
	}
	for i := range d.Upstream {
		if d.Upstream[i].Name == authz.HeaderAuthorization {
			return
		}
	}
	if vs := h.Values("Authorization"); len(vs) == 1 && vs[0] != "" {
		d.Upstream = append(d.Upstream, authz.Header{Name: authz.HeaderAuthorization, Value: vs[0]})
	}
}
