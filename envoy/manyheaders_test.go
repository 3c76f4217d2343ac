package envoy

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/agentos-authz/agentos-authz/authz"
)

// A request with very many headers (docs/CONTRACT.md §5 removes every inbound
// x-agentos-* header, also on preflights and excluded routes, which need no
// credential) must cost time proportional to its size, and nothing more
// once its caller is gone.

// manyHeaderRequest is a preflight (no credential needed) with n distinct
// x-agentos-* headers, as Envoy sends them in http.headers, or in
// header_map with raw values when raw is set.
func manyHeaderRequest(n int, raw bool) *authv3.CheckRequest {
	h := &authv3.AttributeContext_HttpRequest{Method: "OPTIONS", Path: "/agents"}
	if raw {
		lines := make([]*corev3.HeaderValue, 0, n+1)
		lines = append(lines, &corev3.HeaderValue{Key: "origin", RawValue: []byte("https://app.example.com")})
		for i := range n {
			lines = append(lines, &corev3.HeaderValue{Key: fmt.Sprintf("x-agentos-h%d", i), RawValue: []byte("forged")})
		}
		h.HeaderMap = &corev3.HeaderMap{Headers: lines}
	} else {
		h.Headers = make(map[string]string, n+1)
		h.Headers["origin"] = "https://app.example.com"
		for i := range n {
			h.Headers[fmt.Sprintf("x-agentos-h%d", i)] = "forged"
		}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: h}}}
}

// BenchmarkCheckManyHeaders: a preflight carrying n x-agentos-* headers,
// through the real authorizer, every one of them listed for removal. The
// ns/header metric stays flat from 5 000 to 50 000 headers: the work is
// linear (it was quadratic: 37 s of CPU for a 2.4 MB CheckRequest).
func BenchmarkCheckManyHeaders(b *testing.B) {
	srv := benchServer(b)
	ctx := context.Background()
	for _, raw := range []bool{false, true} {
		for _, n := range []int{5_000, 50_000} {
			name := fmt.Sprintf("headers/%d", n)
			if raw {
				name = fmt.Sprintf("header_map/%d", n)
			}
			cr := manyHeaderRequest(n, raw)
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					resp, _ := srv.Check(ctx, cr)
					if got := len(resp.GetOkResponse().GetHeadersToRemove()); got != n {
						b.Fatalf("Check removes %d headers, want %d", got, n)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/header")
			})
		}
	}
}

// TestCheckManyHeadersRemovesAll: the 50 000 forged headers are each
// removed once, sorted, whichever shape Envoy sent them in.
func TestCheckManyHeadersRemovesAll(t *testing.T) {
	srv := benchServer(t)
	for _, raw := range []bool{false, true} {
		resp, err := srv.Check(t.Context(), manyHeaderRequest(50_000, raw))
		if err != nil || resp.GetStatus().GetCode() != int32(codes.OK) {
			t.Fatalf("Check(preflight, raw=%v) = %v, %v; want allowed", raw, resp.GetStatus(), err)
		}
		rm := resp.GetOkResponse().GetHeadersToRemove()
		if len(rm) != 50_000 {
			t.Fatalf("raw=%v: %d headers to remove, want 50000", raw, len(rm))
		}
		for i := 1; i < len(rm); i++ {
			if rm[i-1] >= rm[i] {
				t.Fatalf("raw=%v: headers_to_remove not sorted and unique at %d: %q, %q", raw, i, rm[i-1], rm[i])
			}
		}
	}
}

// TestJoinRepeatedNames: one name repeated many times, with values long
// enough to pass joinInPlaceMax, is joined in arrival order, exactly as
// strings.Join would, from both Envoy shapes.
func TestJoinRepeatedNames(t *testing.T) {
	var want []string
	var lines []*corev3.HeaderValue
	for i := range 3000 {
		v := fmt.Sprintf("v%d-%s", i, strings.Repeat("x", i%7))
		want = append(want, v)
		key := "X-Rep"
		if i%2 == 1 {
			key = "x-rep"
		}
		hv := &corev3.HeaderValue{Key: key}
		if i%3 == 0 {
			hv.RawValue = []byte(v)
		} else {
			hv.Value = v
		}
		lines = append(lines, hv)
	}
	got := joinHeaderLines(context.Background(), lines)
	if got["x-rep"] != strings.Join(want, ",") {
		t.Errorf("joinHeaderLines joined %d bytes, want %d in arrival order", len(got["x-rep"]), len(strings.Join(want, ",")))
	}
	// The map shape: case variants of one name, joined in sorted order of
	// the original keys.
	m := map[string]string{}
	var keys []string
	for i := range 2000 {
		var b strings.Builder
		for j := range 11 {
			if i>>j&1 == 1 {
				b.WriteByte("abcdefghijk"[j] - 'a' + 'A')
			} else {
				b.WriteByte("abcdefghijk"[j])
			}
		}
		k := b.String()
		m[k] = strings.Repeat("y", 600) + k
		keys = append(keys, k)
	}
	lk := lowerKeys(context.Background(), m)
	if len(lk) != 1 {
		t.Fatalf("lowerKeys kept %d names, want 1", len(lk))
	}
	parts := strings.Split(lk["abcdefghijk"], ",")
	if len(parts) != len(keys) {
		t.Fatalf("lowerKeys joined %d values, want %d", len(parts), len(keys))
	}
	for i := 1; i < len(parts); i++ {
		if parts[i-1][600:] >= parts[i][600:] {
			t.Fatalf("lowerKeys values not in sorted key order at %d: %q then %q", i, parts[i-1][600:], parts[i][600:])
		}
	}
}

// countdownCtx is a context that reports cancellation after its first n
// Err calls: the point where the caller hangs up, chosen exactly.
type countdownCtx struct {
	context.Context
	left atomic.Int64
}

func newCountdownCtx(n int64) *countdownCtx {
	c := &countdownCtx{Context: context.Background()}
	c.left.Store(n)
	return c
}

func (c *countdownCtx) Err() error {
	if c.left.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

// recordingDecider answers like the real pipeline does for a cancelled
// caller (deny, never deciding), and records what it was given.
type recordingDecider struct {
	headers int
	calls   int
}

func (d *recordingDecider) Decide(ctx context.Context, r *authz.Request) authz.Decision {
	d.calls++
	d.headers = len(r.Headers)
	if ctx.Err() != nil {
		return authz.Decision{Status: 403, Reason: authz.ReasonCanceled, Detail: "Authorization check canceled"}
	}
	return authz.Decision{Status: 200, Reason: authz.ReasonAllowedPreflight}
}

// TestCheckCanceledStopsWork: once the caller is gone, the 50 000-header
// request is not translated further (the conversion looks at the context
// every ctxCheckEvery headers) and the check denies.
func TestCheckCanceledStopsWork(t *testing.T) {
	const n = 50_000
	// http.headers with lower-case keys (always so from Envoy) is used as
	// is, with no per-header work; upper-case keys make the adapter copy.
	upper := manyHeaderRequest(0, false)
	for i := range n {
		upper.GetAttributes().GetRequest().GetHttp().GetHeaders()[fmt.Sprintf("X-Agentos-H%d", i)] = "forged"
	}
	shapes := map[string]*authv3.CheckRequest{"header_map": manyHeaderRequest(n, true), "headers-upper-case": upper}
	for shape, cr := range shapes {
		for _, after := range []int64{0, 3} {
			t.Run(fmt.Sprintf("%s/hangup-after-%d-looks", shape, after), func(t *testing.T) {
				dec := &recordingDecider{}
				resp, err := NewServer(dec).Check(newCountdownCtx(after), cr)
				if err != nil {
					t.Fatal(err)
				}
				if resp.GetStatus().GetCode() == int32(codes.OK) {
					t.Errorf("Check of a cancelled caller allowed")
				}
				if limit := int(after) * ctxCheckEvery; dec.headers > limit {
					t.Errorf("translated %d of %d headers after the caller left, want at most %d", dec.headers, n+1, limit)
				}
			})
		}
	}
	// The real pipeline: a cancelled caller gets no removal list built.
	srv := benchServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	resp, err := srv.Check(ctx, manyHeaderRequest(n, false))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetStatus().GetCode() == int32(codes.OK) || len(resp.GetOkResponse().GetHeadersToRemove()) != 0 {
		t.Errorf("Check(cancelled) = %v, want a denial with no work done", resp.GetStatus())
	}
}

// TestHTTPCanceledStopsWork: the HTTP adapter's header copy stops as
// soon as the proxy has hung up, and the check denies.
func TestHTTPCanceledStopsWork(t *testing.T) {
	const n = 20_000
	req := httptest.NewRequest(http.MethodOptions, "/agents", nil)
	for i := range n {
		req.Header.Set(fmt.Sprintf("X-Agentos-H%d", i), "forged")
	}
	dec := &recordingDecider{}
	rec := httptest.NewRecorder()
	NewHTTPHandler(dec, HTTPOptions{}).ServeHTTP(rec, req.WithContext(newCountdownCtx(2)))
	if rec.Code == http.StatusOK {
		t.Errorf("HTTP check of a cancelled caller = 200, want a denial")
	}
	if limit := 2 * ctxCheckEvery; dec.calls != 1 || dec.headers > limit {
		t.Errorf("decided %d times with %d of %d headers after the proxy left, want once with at most %d", dec.calls, dec.headers, n, limit)
	}
}
