package envoy

import (
	"context"
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
// Decide answers with 400 Malformed check request (docs/CONTRACT.md §5 step 1).
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
	return fromCheckRequest(context.Background(), cr)
}

// ctxCheckEvery is how many header lines are converted between two looks
// at the caller's context: a cancelled caller stops the conversion of a
// large request within that many lines, at the cost of one ctx.Err per
// batch.
const ctxCheckEvery = 1024

// fromCheckRequest is FromCheckRequest for a caller that may go away: once
// ctx is done, the conversion stops and the partial Request is returned;
// the Decider, seeing the same ctx, fails closed without deciding it.
func fromCheckRequest(ctx context.Context, cr *authv3.CheckRequest) authz.Request {
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
		r.Headers = joinHeaderLines(ctx, lines)
	} else {
		r.Headers = lowerKeys(ctx, h.GetHeaders())
	}
	return r
}

// joinHeaderLines folds Envoy's raw header lines into one value per
// lower-cased name, joining repeats with "," (no space) in arrival order,
// empty values included, exactly as Envoy's default mode does
// (check_request_utils_test.cc BasicHttpWithDuplicateHeaders).
//
// The raw values (bytes) are copied into one string, which the values
// slice: one allocation for all of them rather than one per header. A
// repeated name is joined as joinRepeat says, so the work is linear in the
// request's size however often a name repeats.
func joinHeaderLines(ctx context.Context, lines []*corev3.HeaderValue) map[string]string {
	raw := rawValues(lines)
	m := make(map[string]string, len(lines))
	var repeats map[string][]string // names seen more than once: their values in order
	for i, hv := range lines {
		if i%ctxCheckEvery == 0 && ctx.Err() != nil {
			return m
		}
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
			m[key], repeats = joinRepeat(repeats, key, prev, v)
			continue
		}
		m[key] = v
	}
	for k, vs := range repeats {
		m[k] = strings.Join(vs, ",")
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
func lowerKeys(ctx context.Context, m map[string]string) map[string]string {
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
	// Each name's values are collected in sorted order of the original
	// keys and joined once, so the work stays linear (after the sort)
	// however many case variants a name has.
	out := make(map[string]string, len(m))
	var repeats map[string][]string
	for i, k := range keys {
		if i%ctxCheckEvery == 0 && ctx.Err() != nil {
			return out
		}
		lk := strings.ToLower(k)
		if prev, ok := out[lk]; ok {
			out[lk], repeats = joinRepeat(repeats, lk, prev, m[k])
			continue
		}
		out[lk] = m[k]
	}
	for k, vs := range repeats {
		out[k] = strings.Join(vs, ",")
	}
	return out
}

// joinInPlaceMax bounds the joined value that a repeat is appended to by
// copying: below it, prev + "," + v (one allocation, as the common request
// with a few repeated lines needs); from it on, the name's values are
// collected and joined once at the end. Either way each line costs at most
// joinInPlaceMax + len(v) bytes of copying: linear in the request, where
// always copying would be quadratic (50 000 repeats of one name).
const joinInPlaceMax = 1 << 10

// joinRepeat handles one more value v of a name already holding prev: it
// returns the value to store now and the (possibly created) collection of
// the names joined at the end; the caller joins those with "," once done.
func joinRepeat(repeats map[string][]string, key, prev, v string) (string, map[string][]string) {
	if vs, collected := repeats[key]; collected {
		repeats[key] = append(vs, v)
		return prev, repeats
	}
	if len(prev) < joinInPlaceMax {
		return prev + "," + v, repeats
	}
	if repeats == nil {
		repeats = make(map[string][]string)
	}
	repeats[key] = []string{prev, v}
	return prev, repeats
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
