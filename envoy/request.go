package envoy

import (
	"sort"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/agentos-authz/agentos-authz/authz"
)

// FromCheckRequest translates an Envoy CheckRequest into the pipeline's
// input. It reads only attributes.request.http, through the generated
// nil-safe accessors, so a bare or partial request never panics.
//
// Without HTTP attributes the result is Request{Malformed: true}, which
// Decide answers with 400 Malformed check request (CONTRACT §5 step 1).
//
// Path is http.path as Envoy sends it: the raw :path, query included,
// undecoded (ENVOY-NOTES §1); authz normalises it. Headers come from
// http.headers or, when Envoy runs with encode_raw_headers, from
// http.header_map, whose repeated lines are joined with "," in order as
// Envoy itself joins them in the default mode. Raw values are taken as
// bytes: non-UTF-8 values are kept, not replaced.
//
// In the common case the headers map of the CheckRequest is used as is,
// without a copy: Envoy's keys are already lower-case. The caller must not
// modify the request while the returned Request is in use.
func FromCheckRequest(cr *authv3.CheckRequest) authz.Request {
	h := cr.GetAttributes().GetRequest().GetHttp()
	if h == nil {
		return authz.Request{Malformed: true}
	}
	r := authz.Request{
		Method: h.GetMethod(),
		Path:   h.GetPath(),
		// docs/CONTRACT.md §8: failed service-account lookups are counted
		// per client, the address Envoy reports.
		ClientAddr: cr.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress(),
	}
	if lines := h.GetHeaderMap().GetHeaders(); len(lines) > 0 {
		r.Headers = joinHeaderLines(lines)
	} else {
		r.Headers = lowerKeys(h.GetHeaders())
	}
	return r
}

// joinHeaderLines folds Envoy's raw header lines into one value per
// lower-cased name, joining repeats with "," (no space) in arrival order,
// empty values included, exactly as Envoy's default mode does
// (check_request_utils_test.cc BasicHttpWithDuplicateHeaders).
//
// The raw values (bytes) are copied into one string, which the values
// slice: one allocation for all of them rather than one per header.
func joinHeaderLines(lines []*corev3.HeaderValue) map[string]string {
	raw := rawValues(lines)
	m := make(map[string]string, len(lines))
	for _, hv := range lines {
		var v string
		if n := len(hv.GetRawValue()); n > 0 {
			v, raw = raw[:n], raw[n:]
		} else {
			v = hv.GetValue()
		}
		key := strings.ToLower(hv.GetKey())
		if key == "" {
			continue
		}
		if prev, ok := m[key]; ok {
			m[key] = prev + "," + v
			continue
		}
		m[key] = v
	}
	return m
}

// rawValues is the raw_value bytes of lines (the encode_raw_headers shape;
// the proto allows raw_value or value, and raw_value wins when set),
// concatenated in order into one string.
func rawValues(lines []*corev3.HeaderValue) string {
	n := 0
	for _, hv := range lines {
		n += len(hv.GetRawValue())
	}
	if n == 0 {
		return ""
	}
	var b strings.Builder
	b.Grow(n)
	for _, hv := range lines {
		b.Write(hv.GetRawValue())
	}
	return b.String()
}

// lowerKeys returns m itself when every key is already lower-case (always
// so for Envoy), else a copy with lower-cased keys where keys that differ
// only in case are joined with "," in sorted order of the original keys,
// so the result does not depend on map iteration order.
func lowerKeys(m map[string]string) map[string]string {
	upper := false
	for k := range m {
		if hasUpper(k) {
			upper = true
			break
		}
	}
	if !upper {
		return m
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(map[string]string, len(m))
	for _, k := range keys {
		lk := strings.ToLower(k)
		if prev, ok := out[lk]; ok {
			out[lk] = prev + "," + m[k]
			continue
		}
		out[lk] = m[k]
	}
	return out
}

// hasUpper reports whether s holds a character strings.ToLower would change.
func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || c >= 0x80 {
			return true
		}
	}
	return false
}
