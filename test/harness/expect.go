package harness

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
)

// Outcome is what Envoy makes of a CheckResponse.
type Outcome struct {
	Allowed bool
	Status  int    // 200 on an allow, else the denied HTTP status
	Detail  string // the denied body's "detail"
	// Upstream is the request forwarded upstream after ok_response (allow only).
	Upstream Headers
	// Response is what Envoy adds to the client's response: the denied
	// response's headers, or an allow's response_headers_to_add.
	Response []*corev3.HeaderValueOption

	// Problems breaks one of the README's always-checks or is a response
	// Envoy would not take as a decision.
	Problems []string
}

func (o Outcome) String() string {
	if o.Allowed {
		return "200"
	}
	return fmt.Sprintf("%d %q", o.Status, o.Detail)
}

// Interpret reads resp as Envoy would for the request b, and runs the
// README's always-checks: an allow lets no client-sent x-agentos-* value
// through; a deny has the gRPC code of its status, a JSON body with a
// string detail, content-type: application/json and, on 401,
// www-authenticate: Bearer; an error_response is never a decision.
func Interpret(b Built, resp *authv3.CheckResponse) Outcome {
	var o Outcome
	bad := func(format string, args ...any) {
		o.Problems = append(o.Problems, fmt.Sprintf(format, args...))
	}
	if resp == nil {
		bad("nil CheckResponse")
		return o
	}
	if resp.GetErrorResponse() != nil {
		bad("CheckResponse has an error_response (%v): Envoy treats it as an error, not a decision", resp.GetErrorResponse())
	}
	code := codes.Code(resp.GetStatus().GetCode())
	if code == codes.OK {
		o.Allowed, o.Status = true, 200
		if resp.GetDeniedResponse() != nil {
			bad("status OK with a denied_response")
		}
		ok := resp.GetOkResponse()
		up, err := ApplyOK(b.Upstream, ok)
		if err != nil {
			bad("ok_response: %v", err)
			up = b.Upstream
		}
		o.Upstream = up
		o.Response = ok.GetResponseHeadersToAdd()
		for _, l := range up {
			if l.FromClient && strings.HasPrefix(l.Key, "x-agentos-") {
				bad("client-sent %s: %q reaches the upstream", l.Key, l.Value)
			}
		}
		return o
	}

	denied := resp.GetDeniedResponse()
	o.Status = 403 // Envoy's default for a denial without a status
	if denied == nil {
		bad("denied (gRPC %v) without a denied_response", code)
		return o
	}
	if s := int(denied.GetStatus().GetCode()); s > 0 {
		o.Status = s
	} else {
		bad("denied_response without an HTTP status")
	}
	o.Response = denied.GetHeaders()
	wantCode, known := map[int]codes.Code{400: codes.InvalidArgument, 401: codes.Unauthenticated, 403: codes.PermissionDenied,
		429: codes.ResourceExhausted, 503: codes.Unavailable}[o.Status]
	switch {
	case !known:
		bad("denied with HTTP %d, which is not a decision of the contract (400, 401, 403, 429, 503)", o.Status)
	case code != wantCode:
		bad("HTTP %d with gRPC code %v, want %v", o.Status, code, wantCode)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(denied.GetBody()), &body); err != nil {
		bad("denied body %q is not a JSON object", truncate(denied.GetBody(), 120))
	} else if d, ok := body["detail"].(string); !ok {
		bad("denied body %q has no string detail", truncate(denied.GetBody(), 120))
	} else {
		o.Detail = d
	}
	if ct := HeaderValues(o.Response, "content-type"); !slices.Equal(ct, []string{"application/json"}) {
		bad("denied response content-type = %q, want [\"application/json\"]", ct)
	}
	if o.Status == 401 {
		if wa := HeaderValues(o.Response, "www-authenticate"); !slices.Equal(wa, []string{"Bearer"}) {
			bad("401 www-authenticate = %q, want [\"Bearer\"]", wa)
		}
	}
	return o
}

// Compare lists how o differs from what e wants; each line reads as a call:
// `GET /agents = 403 "Insufficient...", want 200`.
func Compare(e conformance.Expect, b Built, o Outcome) []string {
	call := b.Describe()
	var out []string
	for _, p := range o.Problems {
		out = append(out, fmt.Sprintf("%s: %s", call, p))
	}
	if !e.Status.Has(o.Status) {
		return append(out, fmt.Sprintf("%s = %v, want %s", call, o, wantString(e)))
	}
	if e.Detail != nil && o.Detail != *e.Detail {
		out = append(out, fmt.Sprintf("%s = %v, want detail %q", call, o, *e.Detail))
	}
	if e.DetailPrefix != nil && !strings.HasPrefix(o.Detail, *e.DetailPrefix) {
		out = append(out, fmt.Sprintf("%s = %v, want detail starting with %q", call, o, *e.DetailPrefix))
	}
	if len(e.Headers) > 0 || len(e.AbsentHeaders) > 0 {
		if !o.Allowed {
			out = append(out, fmt.Sprintf("%s = %v: the vector expects upstream headers, which only an allow has", call, o))
		} else {
			for _, key := range slices.Sorted(maps.Keys(e.Headers)) {
				if msg := matchHeader(e.Headers[key], o.Upstream.Values(key)); msg != "" {
					out = append(out, fmt.Sprintf("%s: upstream %s %s", call, strings.ToLower(key), msg))
				}
			}
			for _, key := range e.AbsentHeaders {
				if vs := o.Upstream.Values(key); len(vs) > 0 {
					out = append(out, fmt.Sprintf("%s: upstream %s = %q, want absent", call, strings.ToLower(key), vs))
				}
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(e.ResponseHeaders)) {
		if msg := matchHeader(e.ResponseHeaders[key], HeaderValues(o.Response, key)); msg != "" {
			out = append(out, fmt.Sprintf("%s: response %s %s", call, strings.ToLower(key), msg))
		}
	}
	for _, key := range e.AbsentResponseHeaders {
		if vs := HeaderValues(o.Response, key); len(vs) > 0 {
			out = append(out, fmt.Sprintf("%s: response %s = %q, want absent", call, strings.ToLower(key), vs))
		}
	}
	return out
}

func wantString(e conformance.Expect) string {
	s := e.Status.String()
	switch {
	case e.Detail != nil:
		s += fmt.Sprintf(" %q", *e.Detail)
	case e.DetailPrefix != nil:
		s += fmt.Sprintf(" %q...", *e.DetailPrefix)
	}
	return s
}

// matchHeader checks a header's values against one expectation: exactly one
// value, equal to the string, or a JSON array equal as a set (without
// duplicates), or a JSON value. It returns "" on a match.
func matchHeader(want conformance.HeaderExpect, got []string) string {
	if len(got) != 1 {
		return fmt.Sprintf("= %q, want exactly one value, %v", got, want)
	}
	v := got[0]
	switch {
	case want.Exact != nil:
		if v != *want.Exact {
			return fmt.Sprintf("= %q, want %q", v, *want.Exact)
		}
	case want.Set != nil:
		var arr []string
		if err := json.Unmarshal([]byte(v), &arr); err != nil || arr == nil {
			return fmt.Sprintf("= %q, want a JSON array of strings equal to %v", v, want)
		}
		if dup := firstDuplicate(arr); dup != "" {
			return fmt.Sprintf("= %q, has %q twice, want %v", v, dup, want)
		}
		if !sameSet(arr, want.Set) {
			return fmt.Sprintf("= %q, want %v", v, want)
		}
	default:
		var gotV, wantV any
		if err := json.Unmarshal([]byte(v), &gotV); err != nil {
			return fmt.Sprintf("= %q, not JSON, want %v", v, want)
		}
		if err := json.Unmarshal(want.JSON, &wantV); err != nil {
			return fmt.Sprintf("expectation %s is not JSON", want.JSON)
		}
		if !reflect.DeepEqual(gotV, wantV) {
			return fmt.Sprintf("= %q, want %v", v, want)
		}
	}
	return ""
}

func firstDuplicate(s []string) string {
	seen := map[string]bool{}
	for _, v := range s {
		if seen[v] {
			return v
		}
		seen[v] = true
	}
	return ""
}

func sameSet(a, b []string) bool {
	x, y := slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
