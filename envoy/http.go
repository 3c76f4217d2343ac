package envoy

import (
	"context"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/agentos-authz/agentos-authz/authz"
)

// HTTP ext_authz mode (docs/CONTRACT.md §6): an http.Request is translated into the
// same authz.Request as a CheckRequest, decided by the same Decider, and
// the Decision rendered as the HTTP reply Envoy's HTTP service mode, nginx
// auth_request and Traefik ForwardAuth all read: 200 with the upstream
// headers, or the denial's status with its JSON body.

// Headers that name the checked request when a proxy sends the check as a
// request of its own (docs/CONTRACT.md §6).
const (
	headerOriginalURI     = "X-Original-Uri"     // nginx auth_request
	headerOriginalMethod  = "X-Original-Method"  // nginx auth_request
	headerForwardedURI    = "X-Forwarded-Uri"    // Traefik ForwardAuth
	headerForwardedMethod = "X-Forwarded-Method" // Traefik ForwardAuth

	// headerEnvoyRemove lists the headers Envoy's HTTP ext_authz client
	// removes from the upstream request on allow (ENVOY-NOTES §5).
	headerEnvoyRemove = "x-envoy-auth-headers-to-remove"
)

// HTTPOptions configure NewHTTPHandler.
type HTTPOptions struct {
	// PathPrefix is the configuration's http.path_prefix: Envoy's
	// http_service.path_prefix, stripped from the request path in Envoy's
	// HTTP service mode. "" means none.
	PathPrefix string
	// Logger receives faults (a decision HTTP cannot carry); nil means
	// zap.NewNop(). Decisions themselves are logged by the Decider.
	Logger *zap.Logger
	// EchoAuthorization is set with upstream.identity_token
	// (docs/CONTRACT.md §9): every 200 then carries the Authorization the
	// upstream must receive, the identity token or else the caller's own
	// (see passAuthorization), for a proxy that replaces the header with
	// the reply's. Off, a reply never carries the caller's credential.
	EchoAuthorization bool
}

// httpHandler is the HTTP ext_authz service. It keeps no per-request state.
type httpHandler struct {
	decider Decider
	prefix  string
	log     *zap.Logger
	echo    bool
}

var _ http.Handler = (*httpHandler)(nil)

// NewHTTPHandler returns the HTTP ext_authz service around d: every
// request is a check (docs/CONTRACT.md §6), decided on the serving goroutine. It
// panics if d is nil: that is a wiring bug, not an input.
//
// The http.Server serving it must set DisableGeneralOptionsHandler:
// otherwise net/http answers "OPTIONS *" itself with 200, without the
// handler (and so the pipeline) ever seeing it.
func NewHTTPHandler(d Decider, opts HTTPOptions) http.Handler {
	if d == nil {
		panic("envoy: NewHTTPHandler called with a nil Decider")
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &httpHandler{decider: d, prefix: opts.PathPrefix, log: log, echo: opts.EchoAuthorization}
}

// ServeHTTP answers one check. A cancelled request context reaches the
// Decider, which fails closed.
func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := FromHTTPRequest(r, h.prefix)
	req.Transport = authz.TransportHTTP
	d := h.decider.Decide(r.Context(), &req)
	if h.echo {
		passAuthorization(&d, r.Header)
	}
	if err := WriteDecision(w, &d); err != nil {
		// Only an allow can fail, before anything was written: its 500 is
		// an error to every proxy, which then denies (fails closed).
		h.log.Warn("allowed decision not sent: its headers cannot be carried by HTTP",
			zap.Error(err), zap.Stringer("reason", d.Reason), zap.String("request_id", req.Headers["x-request-id"]))
	}
}

// FromHTTPRequest translates an HTTP check into the pipeline's input.
//
// Method and Path are those of the checked request: X-Original-Method and
// X-Original-URI (nginx auth_request) or X-Forwarded-Method and
// X-Forwarded-Uri (Traefik ForwardAuth) when present, else the request's
// own method and raw target (Envoy's HTTP service mode), with prefix
// (http.path_prefix) stripped. Path is raw, query included, undecoded:
// authz normalises it.
//
// A check that cannot be read unambiguously is Request{Malformed: true},
// which Decide answers with 400 Malformed check request: one of those
// headers repeated or empty, the nginx and the Traefik header both present
// with different values, or (Envoy mode) a target without the prefix.
//
// Headers are the request's, lower-cased, repeated lines joined with ","
// in arrival order as Envoy joins them, plus "host".
func FromHTTPRequest(r *http.Request, prefix string) authz.Request {
	method, mOK := checkedValue(r.Header, headerOriginalMethod, headerForwardedMethod, r.Method)
	path, pOK := checkedValue(r.Header, headerOriginalURI, headerForwardedURI, "")
	switch {
	case !pOK || path != "":
	case !strings.HasPrefix(r.RequestURI, "/"):
		// A target that is not origin-form: asterisk-form (OPTIONS *),
		// absolute-form (GET http://host/agents) or authority-form
		// (CONNECT host:443). No proxy sends one as a check: it goes to
		// the pipeline as is, which answers 400 Malformed request path
		// (docs/CONTRACT.md §5), never an allow it was not asked for.
		path = r.RequestURI
	default:
		// Envoy's HTTP service mode: the request is the check.
		path, pOK = stripPrefix(r.RequestURI, prefix)
	}
	if !mOK || !pOK {
		return authz.Request{Malformed: true}
	}
	return authz.Request{Method: method, Path: path, Headers: lowerHeader(r.Context(), r.Header, r.Host), ClientAddr: clientAddr(r)}
}

// clientAddr is the client the proxy reports (docs/CONTRACT.md §8): the
// last X-Forwarded-For entry, the one the proxy in front appended, else
// the connection's peer (its host, without the port).
func clientAddr(r *http.Request) string {
	if vs := r.Header.Values("X-Forwarded-For"); len(vs) > 0 {
		last := vs[len(vs)-1]
		if i := strings.LastIndexByte(last, ','); i >= 0 {
			last = last[i+1:]
		}
		if last = strings.TrimSpace(last); last != "" {
			return last
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// checkedValue reads one attribute of the checked request from the nginx
// header or the Traefik one, or returns def when neither is sent. ok is
// false when the attribute is ambiguous: a header sent twice or empty (a
// proxy that sets it sets one value; empty would fall back to the check's
// own target, which is not the client's), or both sent with different
// values.
func checkedValue(h http.Header, nginx, traefik, def string) (string, bool) {
	a, aSet, aOK := single(h, nginx)
	b, bSet, bOK := single(h, traefik)
	switch {
	case !aOK || !bOK:
		return "", false
	case aSet && bSet && a != b:
		return "", false
	case aSet:
		return a, true
	case bSet:
		return b, true
	}
	return def, true
}

// single returns the one non-empty value of the canonical header key;
// set reports whether it was sent at all, ok whether it is usable.
func single(h http.Header, key string) (v string, set, ok bool) {
	vs := h[key]
	switch {
	case len(vs) == 0:
		return "", false, true
	case len(vs) > 1 || vs[0] == "":
		return "", true, false
	}
	return vs[0], true, true
}

// stripPrefix removes prefix from the raw target; with a prefix, a target
// that does not start with prefix + "/" was not sent by Envoy with it.
func stripPrefix(target, prefix string) (string, bool) {
	if prefix == "" {
		return target, true
	}
	rest, ok := strings.CutPrefix(target, prefix)
	if !ok || !strings.HasPrefix(rest, "/") {
		return "", false
	}
	return rest, true
}

// lowerHeader copies h with lower-case keys, repeated values joined with
// "," in order (Envoy's default mode), and the Host header, which net/http
// keeps apart in r.Host. The work is linear in the header block; once ctx
// is done (the proxy hung up) the copy stops, and the Decider, seeing the
// same ctx, fails closed without deciding the partial request.
func lowerHeader(ctx context.Context, h http.Header, host string) map[string]string {
	m := make(map[string]string, len(h)+1)
	i := 0
	for k, vs := range h {
		if i%ctxCheckEvery == 0 && ctx.Err() != nil {
			return m
		}
		i++
		m[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	if host != "" {
		m["host"] = host
	}
	return m
}

// errUncarriable is returned by WriteDecision for an allow whose upstream
// headers HTTP/1.1 cannot carry as they are.
type errUncarriable struct{ name string }

func (e *errUncarriable) Error() string {
	return "the value of " + e.name + " cannot be carried by an HTTP header (control character, or white space at an end)"
}

// WriteDecision renders d as the HTTP ext_authz reply (docs/CONTRACT.md §5, §6).
//
// Allowed, or shadowed (d.Passes): 200, no body, every d.Upstream header, and d.Remove in
// x-envoy-auth-headers-to-remove, which Envoy applies to the upstream
// request (nginx and Traefik copy only the x-agentos-* headers). A header
// value HTTP cannot carry exactly (a claim holding a control character, or
// white space at an end that a proxy would trim) is not altered: the reply
// is then 500 with a JSON detail, which every proxy treats as a failed
// check, and the error says which header.
//
// Anything else denies (fail closed: the zero Decision denies with 403):
// the status, content-type: application/json, the JSON body
// {"detail": ...} as the gRPC adapter writes it, www-authenticate: Bearer
// on 401, and the d.Response (CORS) headers that are valid field values.
func WriteDecision(w http.ResponseWriter, d *authz.Decision) error {
	if d.Passes() { // an allow, or a decision shadow mode reports only
		return writeAllow(w, d)
	}
	status := httpStatus(d.Status)
	detail := d.Detail
	if detail == "" {
		detail = http.StatusText(status)
	}
	h := w.Header()
	for _, x := range d.Response {
		if carriable(x.Name, x.Value) {
			h.Set(x.Name, x.Value)
		}
	}
	if status == http.StatusUnauthorized {
		h.Set("Www-Authenticate", bearerChallenge)
	}
	writeJSON(w, status, detail)
	return nil
}

func writeAllow(w http.ResponseWriter, d *authz.Decision) error {
	for _, x := range d.Upstream {
		if !carriable(x.Name, x.Value) {
			writeJSON(w, http.StatusInternalServerError, "Identity cannot be sent as HTTP headers")
			return &errUncarriable{name: x.Name}
		}
	}
	h := w.Header()
	for _, x := range d.Upstream {
		h.Set(x.Name, x.Value)
	}
	if len(d.Remove) > 0 {
		names := make([]string, 0, len(d.Remove))
		for _, n := range d.Remove {
			if authz.IsHTTPToken(n) {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		h.Set(headerEnvoyRemove, strings.Join(names, ","))
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// writeJSON writes status with the {"detail": ...} body.
func writeJSON(w http.ResponseWriter, status int, detail string) {
	body := detailBody(detail)
	h := w.Header()
	h.Set("Content-Type", contentTypeJSON)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// carriable reports whether name is a header token and value a field value
// HTTP/1.1 carries unchanged (RFC 9110 §5.5): no control character other
// than tab, and no white space at either end, which parsers strip.
func carriable(name, value string) bool {
	if !authz.IsHTTPToken(name) {
		return false
	}
	if value == "" {
		return true
	}
	if c := value[0]; c == ' ' || c == '\t' {
		return false
	}
	if c := value[len(value)-1]; c == ' ' || c == '\t' {
		return false
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
