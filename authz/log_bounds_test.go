package authz

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// logTestAuthorizer is the real pipeline (HS256, authorization on) logging
// every decision to an observer.
func logTestAuthorizer(t *testing.T) (*Authorizer, *observer.ObservedLogs) {
	t.Helper()
	cfg, err := Load([]byte("os_id: test-os\njwt:\n  algorithms: [HS256]\n  verification_keys: [\"log-test-secret-0123456789abcdef-0123456789\"]\n"), nil, LoadOptions{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	a, err := New(cfg, Options{Logger: zap.New(core)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a, logs
}

// TestDecisionLogBounds: a client-chosen path, method or request id of any
// size gives a bounded log line, cut at logPathMax (or less) and marked
// with its full length; a short one is logged whole.
func TestDecisionLogBounds(t *testing.T) {
	a, logs := logTestAuthorizer(t)
	huge := "/agents/" + strings.Repeat("a", 3<<20)
	tests := []struct {
		name      string
		r         Request
		field     string
		want      string // exact value, or the prefix when cut
		fullBytes int    // 0: not cut
	}{
		{name: "3 MB path, denied 401", r: Request{Method: "GET", Path: huge}, field: "path", want: huge[:logPathMax], fullBytes: len(huge)},
		{name: "3 MB ambiguous path, denied 400 (raw path, query cut first)", r: Request{Method: "GET", Path: huge + "/../x?q=" + strings.Repeat("q", 1000)},
			field: "path", want: huge[:logPathMax], fullBytes: len(huge) + len("/../x")},
		{name: "multi-byte characters not split", r: Request{Method: "GET", Path: "/" + strings.Repeat("é", 2000)},
			field: "path", want: ("/" + strings.Repeat("é", 2000))[:logPathMax-1], fullBytes: 1 + 2*2000},
		{name: "short path whole", r: Request{Method: "GET", Path: "/agents?limit=5"}, field: "path", want: "/agents"},
		{name: "huge method", r: Request{Method: strings.Repeat("M", 100_000), Path: "/agents"}, field: "method", want: strings.Repeat("M", logMethodMax), fullBytes: 100_000},
		{name: "huge request id", r: Request{Method: "GET", Path: "/agents", Headers: map[string]string{"x-request-id": strings.Repeat("r", 70_000)}},
			field: "request_id", want: strings.Repeat("r", logRequestIDMax), fullBytes: 70_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.TakeAll()
			a.Decide(t.Context(), &tt.r)
			entries := logs.TakeAll()
			if len(entries) != 1 {
				t.Fatalf("%d log entries, want the one decision line", len(entries))
			}
			got, _ := entries[0].ContextMap()[tt.field].(string)
			want := tt.want
			if tt.fullBytes > 0 {
				want += "…(truncated, " + strconv.Itoa(tt.fullBytes) + " bytes)"
			}
			if got != want {
				t.Errorf("%s = %.80q… (%d bytes), want %.80q… (%d bytes)", tt.field, got, len(got), want, len(want))
			}
			if !utf8.ValidString(got) {
				t.Errorf("%s is not valid UTF-8 after the cut", tt.field)
			}
			line, _ := json.Marshal(entries[0].ContextMap())
			if len(line) > 4<<10 {
				t.Errorf("decision log line is %d bytes, want at most 4 KiB", len(line))
			}
		})
	}
}

// TestDecisionLogNoHeaderValues: whatever the outcome, no header value
// reaches the decision log (x-request-id, the correlation id, aside).
func TestDecisionLogNoHeaderValues(t *testing.T) {
	a, logs := logTestAuthorizer(t)
	const marker = "HDRVAL-7f3a"
	headers := map[string]string{
		"authorization":         "Bearer " + marker + "-token",
		"cookie":                "access_token=" + marker + "-cookie",
		"x-agentos-user-id":     marker + "-spoofed-user",
		"x-agentos-claim-email": marker + "@example.com",
		"x-custom":              marker + "-custom",
		"origin":                "https://" + marker + ".example.com",
		"x-request-id":          "req-1",
	}
	for _, r := range []Request{
		{Method: "GET", Path: "/agents"},             // 401 invalid token
		{Method: "GET", Path: "/agents/a%2Fb"},       // 400 ambiguous path
		{Method: "OPTIONS", Path: "/agents"},         // allowed preflight (debug)
		{Method: "GET", Path: "/health"},             // allowed excluded route (debug)
		{Method: "GET\x00", Path: "/agents"},         // 400 malformed request
		{Method: "POST", Path: "/agents/web/runs?x"}, // 401
	} {
		r.Headers = headers
		a.Decide(t.Context(), &r)
	}
	entries := logs.All()
	if len(entries) < 6 {
		t.Fatalf("%d log entries, want one per decision (6): the test would not see a leak", len(entries))
	}
	for _, e := range entries {
		fields, _ := json.Marshal(e.ContextMap())
		if text := e.Message + " " + string(fields); strings.Contains(text, marker) {
			t.Errorf("log entry leaks a header value: %s", text)
		}
	}
}

func TestTruncateForLog(t *testing.T) {
	for _, tt := range []struct {
		in   string
		max  int
		want string
	}{
		{"", 4, ""},
		{"abcd", 4, "abcd"},
		{"abcde", 4, "abcd…(truncated, 5 bytes)"},
		{"ab\u00e9e", 3, "ab…(truncated, 5 bytes)"},
		{"\xff\xff\xff\xff\xff\xff", 2, "\xff\xff…(truncated, 6 bytes)"},
	} {
		if got := truncateForLog(tt.in, tt.max); got != tt.want {
			t.Errorf("truncateForLog(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}
