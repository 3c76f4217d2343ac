package envoy

import (
	"net/http"
	"strings"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/agentos-authz/agentos-authz/authz"
)

// ToCheckResponse renders a decision as Envoy's CheckResponse.
//
// Allowed (Status 200), or shadowed (d.Passes: shadow mode reports the
// decision in x-agentos-shadow-decision, among d.Upstream): status OK and an OkHttpResponse that sets every
// d.Upstream header with OVERWRITE_IF_EXISTS_OR_ADD (portable across Envoy
// versions, ENVOY-NOTES §3) and lists d.Remove in headers_to_remove, so no
// client-sent x-agentos-* value reaches the upstream; the same values go
// into the response's dynamic_metadata, keyed by header name, except an
// identity token's authorization (docs/CONTRACT.md §9), which replaces the
// caller's and is a credential, not metadata.
//
// Anything else denies (fail closed: the zero Decision denies): status
// UNAUTHENTICATED for 401, INVALID_ARGUMENT for 400, RESOURCE_EXHAUSTED for
// 429, UNAVAILABLE for 503, PERMISSION_DENIED otherwise, and always a
// DeniedHttpResponse with the HTTP status, the JSON body {"detail": ...},
// content-type: application/json, www-authenticate: Bearer on 401, and
// d.Response (CORS) headers (docs/CONTRACT.md §5). It never sets
// error_response.
//
// The returned message shares d's strings and slices; it is built with a
// fixed, small number of allocations because it is on every check's path
// (an allow: its messages, its headers' storage, their list and the
// metadata's map; a deny: its messages, its headers' storage, their list
// and the body).
func ToCheckResponse(d *authz.Decision) *authv3.CheckResponse {
	if d.Passes() { // an allow, or a decision shadow mode reports only
		return allowResponse(d)
	}
	return denyResponse(d)
}

const (
	contentTypeJSON = "application/json"
	bearerChallenge = "Bearer"
)

// allowBlock is every message of an allow response but its headers,
// allocated at once: a response is built for every check, and each
// allocation costs the server CPU twice, to allocate and to collect
// (the profile in the README's Performance section). The messages point into the block, so it lives as
// long as the response.
type allowBlock struct {
	resp   authv3.CheckResponse
	status rpcstatus.Status
	oneof  authv3.CheckResponse_OkResponse
	ok     authv3.OkHttpResponse
	md     structpb.Struct
}

// allowSlot is the storage of one upstream header: its header option
// and its dynamic metadata value.
type allowSlot struct {
	header headerSlot
	value  structpb.Value
	str    structpb.Value_StringValue
}

// headerSlot is the storage of one HeaderValueOption.
type headerSlot struct {
	opt corev3.HeaderValueOption
	val corev3.HeaderValue
}

// denyBlock is allowBlock for a denial.
type denyBlock struct {
	resp   authv3.CheckResponse
	status rpcstatus.Status
	oneof  authv3.CheckResponse_DeniedResponse
	denied authv3.DeniedHttpResponse
	http   typev3.HttpStatus
}

func allowResponse(d *authz.Decision) *authv3.CheckResponse {
	b := new(allowBlock)
	b.status.Code = int32(codes.OK)
	b.ok.HeadersToRemove = validNames(d.Remove)
	b.oneof.OkResponse = &b.ok
	b.resp.Status = &b.status
	b.resp.HttpResponse = &b.oneof
	if n := len(d.Upstream); n > 0 {
		slots := make([]allowSlot, n)
		out := make([]*corev3.HeaderValueOption, n)
		fields := make(map[string]*structpb.Value, n)
		for i := range d.Upstream {
			h, sl := &d.Upstream[i], &slots[i]
			out[i] = sl.header.set(h)
			if h.Name == authz.HeaderAuthorization {
				// docs/CONTRACT.md §9: the identity token replaces the
				// caller's authorization (overwrite, never append). It is
				// a credential, not identity metadata: it stays out of
				// the dynamic metadata, which access logs may print.
				continue
			}
			// docs/CONTRACT.md §5: the metadata holds the same values as the
			// headers, one string per header name.
			sl.str.StringValue = validUTF8(h.Value)
			sl.value.Kind = &sl.str
			fields[sl.header.val.Key] = &sl.value
		}
		b.ok.Headers = out
		b.md.Fields = fields
		b.resp.DynamicMetadata = &b.md
	}
	return &b.resp
}

func denyResponse(d *authz.Decision) *authv3.CheckResponse {
	status := httpStatus(d.Status)
	detail := d.Detail
	if detail == "" {
		detail = http.StatusText(status)
	}
	fixed := [2]authz.Header{{Name: "content-type", Value: contentTypeJSON}}
	n := 1
	if status == http.StatusUnauthorized {
		fixed[1] = authz.Header{Name: "www-authenticate", Value: bearerChallenge}
		n = 2
	}
	b := new(denyBlock)
	b.http.Code = typev3.StatusCode(status)
	b.denied.Status = &b.http
	b.denied.Headers = headerOptions(fixed[:n], d.Response)
	b.denied.Body = detailBody(detail)
	b.oneof.DeniedResponse = &b.denied
	b.status.Code = int32(grpcCode(status))
	b.status.Message = validUTF8(detail)
	b.resp.Status = &b.status
	b.resp.HttpResponse = &b.oneof
	return &b.resp
}

// httpStatus is the HTTP status of a denial: d.Status when Envoy's
// StatusCode enum knows it as a client or server error, else 403 (the
// zero Decision and any unexpected value deny as forbidden).
func httpStatus(s int) int {
	if s >= 400 && s <= 599 {
		if _, known := typev3.StatusCode_name[int32(s)]; known {
			return s
		}
	}
	return http.StatusForbidden
}

// grpcCode maps a denial's HTTP status to the CheckResponse status code
// (docs/CONTRACT.md §5). Envoy reads any non-OK code as a denial.
func grpcCode(status int) codes.Code {
	switch status {
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	default:
		return codes.PermissionDenied
	}
}

// headerOptions builds one HeaderValueOption per header of a and then b,
// all with OVERWRITE_IF_EXISTS_OR_ADD, in two allocations whatever the
// count. It returns nil for no headers.
func headerOptions(a, b []authz.Header) []*corev3.HeaderValueOption {
	n := len(a) + len(b)
	if n == 0 {
		return nil
	}
	slots := make([]headerSlot, n)
	out := make([]*corev3.HeaderValueOption, n)
	for i := range n {
		h := headerAt(a, b, i)
		out[i] = slots[i].set(&h)
	}
	return out
}

// set fills the slot with h, to be set (OVERWRITE_IF_EXISTS_OR_ADD), and
// returns its option.
func (s *headerSlot) set(h *authz.Header) *corev3.HeaderValueOption {
	s.val.Key = validUTF8(h.Name)
	if utf8.ValidString(h.Value) {
		s.val.Value = h.Value
	} else {
		// A proto3 string must be UTF-8; raw_value carries any bytes.
		s.val.RawValue = []byte(h.Value)
	}
	s.opt.Header = &s.val
	s.opt.AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
	return &s.opt
}

func headerAt(a, b []authz.Header, i int) authz.Header {
	if i < len(a) {
		return a[i]
	}
	return b[i-len(a)]
}

// validNames returns names itself when every name is valid UTF-8 (always,
// for names authz took from Envoy's headers), else a sanitised copy: a
// response that fails to marshal would reach Envoy as an RPC error, and an
// RPC error can mean "allow" under failure_mode_allow.
func validNames(names []string) []string {
	for i, n := range names {
		if !utf8.ValidString(n) {
			out := make([]string, len(names))
			copy(out, names[:i])
			for j := i; j < len(names); j++ {
				out[j] = validUTF8(names[j])
			}
			return out
		}
	}
	return names
}

// validUTF8 returns s, with invalid UTF-8 sequences replaced by U+FFFD when
// there are any (proto3 strings must be UTF-8 to marshal).
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// detailBody returns the JSON document {"detail": "<detail>"}, escaped as
// encoding/json would escape the string (including <, > and &, U+2028,
// U+2029, and invalid UTF-8 as U+FFFD), in a single allocation.
func detailBody(detail string) string {
	const prefix, suffix = `{"detail": "`, `"}`
	var b strings.Builder
	b.Grow(len(prefix) + len(detail) + len(suffix) + escapeSlack(detail))
	b.WriteString(prefix)
	writeJSONEscaped(&b, detail)
	b.WriteString(suffix)
	return b.String()
}

const hexDigits = "0123456789abcdef"

// escapeSlack is how many bytes escaping adds to s, so detailBody can size
// its buffer exactly.
func escapeSlack(s string) int {
	extra := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
				extra++
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				extra += 5
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			extra += 6 - size // \ufffd
		case r == '\u2028' || r == '\u2029':
			extra += 6 - size
		}
		i += size
	}
	return extra
}

// writeJSONEscaped writes s as the body of a JSON string literal.
func writeJSONEscaped(b *strings.Builder, s string) {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b.WriteString(s[start:i])
			switch c {
			case '"', '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			case '\b':
				b.WriteString(`\b`)
			case '\f':
				b.WriteString(`\f`)
			default:
				b.WriteString(`\u00`)
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString(s[start:i])
			b.WriteString(`\ufffd`)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b.WriteString(s[start:i])
			b.WriteString(`\u202`)
			b.WriteByte(hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b.WriteString(s[start:])
}
