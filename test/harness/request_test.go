package harness

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
)

func mustRequest(t *testing.T, doc string) conformance.Request {
	t.Helper()
	var r conformance.Request
	if err := json.Unmarshal([]byte(doc), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestBuildRequestDefaults(t *testing.T) {
	b, err := BuildRequest(mustRequest(t, `{"method": "GET", "path": "/agents?limit=5", "headers": {}}`), map[string]string{"token": "T0K"})
	if err != nil {
		t.Fatal(err)
	}
	h := b.Check.GetAttributes().GetRequest().GetHttp()
	if h.GetMethod() != "GET" || h.GetPath() != "/agents?limit=5" || h.GetHost() != DefaultAuthority || h.GetScheme() != "http" {
		t.Errorf("http = %v", h)
	}
	if h.GetQuery() != "" || h.GetFragment() != "" || h.GetHeaderMap() != nil || h.GetId() == "" {
		t.Errorf("http = %v: query/fragment set, header_map set or no id", h)
	}
	want := map[string]string{
		":authority": DefaultAuthority, ":method": "GET", ":path": "/agents?limit=5", ":scheme": "http",
		"authorization": "Bearer T0K", "user-agent": DefaultUserAgent, "x-forwarded-proto": "http",
	}
	got := h.GetHeaders()
	if len(got["x-request-id"]) != 36 {
		t.Errorf("x-request-id = %q, want a UUID", got["x-request-id"])
	}
	delete(got, "x-request-id")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("headers = %v, want %v", got, want)
	}
	if b.Describe() != "GET /agents?limit=5" {
		t.Errorf("Describe = %q", b.Describe())
	}
	for _, l := range b.Upstream {
		if !l.FromClient {
			t.Errorf("upstream line %v not marked as the client's", l)
		}
	}
	if m, _ := BuildRequest(conformance.Request{Path: "/x"}, nil); m.Method != "GET" {
		t.Errorf("default method = %q, want GET", m.Method)
	}
}

func TestBuildRequestHeaders(t *testing.T) {
	tests := []struct {
		name   string
		doc    string
		tokens map[string]string
		want   map[string]string // subset of the headers map
		absent []string
	}{
		{
			name: "host becomes :authority", doc: `{"path": "/a", "headers": {"host": "h.example:8080"}}`,
			want: map[string]string{":authority": "h.example:8080"}, absent: []string{"host"},
		},
		{
			name: "{token} mention: no authorization added", doc: `{"path": "/a", "headers": {"cookie": "a=1; access_token={token}"}}`,
			tokens: map[string]string{"token": "T"},
			want:   map[string]string{"cookie": "a=1; access_token=T"}, absent: []string{"authorization"},
		},
		{
			name: "two tokens", doc: `{"path": "/a", "headers": {"authorization": "Bearer {token2}", "x-other": "{token}"}}`,
			tokens: map[string]string{"token": "T1", "token2": "T2"},
			want:   map[string]string{"authorization": "Bearer T2", "x-other": "T1"},
		},
		{
			name: "no token: no authorization", doc: `{"path": "/a", "headers": {}}`,
			absent: []string{"authorization"},
		},
		{
			name: "keys lower-cased", doc: `{"path": "/a", "headers": {"X-AgentOS-Extra": "1"}}`,
			want: map[string]string{"x-agentos-extra": "1"},
		},
		{
			name: "repeated lines joined like Envoy", doc: `{"path": "/a", "headers": {"x-agentos-user-id": "admin"}, "header_lines": [["x-agentos-user-id", "root"], ["x-e", ""], ["x-e", "foo"], ["x-e", "bar"]]}`,
			want: map[string]string{"x-agentos-user-id": "admin,root", "x-e": ",foo,bar"},
		},
		{
			name: "given defaults are kept", doc: `{"method": "POST", "path": "/a", "headers": {"user-agent": "ua", "x-request-id": "rid", ":scheme": "https"}}`,
			want: map[string]string{"user-agent": "ua", "x-request-id": "rid", ":scheme": "https", "x-forwarded-proto": "https", ":method": "POST"},
		},
	}
	for _, tt := range tests {
		b, err := BuildRequest(mustRequest(t, tt.doc), tt.tokens)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		got := b.Check.GetAttributes().GetRequest().GetHttp().GetHeaders()
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%s: headers[%q] = %q, want %q", tt.name, k, got[k], v)
			}
		}
		for _, k := range tt.absent {
			if v, ok := got[k]; ok {
				t.Errorf("%s: headers[%q] = %q, want absent", tt.name, k, v)
			}
		}
	}
	if _, err := BuildRequest(mustRequest(t, `{"path": "/a", "headers": {"authorization": "{token2}"}}`), map[string]string{"token": "T"}); err == nil {
		t.Error("{token2} without token2: no error")
	}
}

func TestBuildRequestRawHeaders(t *testing.T) {
	b, err := BuildRequest(mustRequest(t, `{"path": "/teams?limit=10", "headers": {}, "header_lines": [["x-agentos-user-id", "admin"], ["x-agentos-user-id", "root"]], "raw_headers": true}`),
		map[string]string{"token": "T"})
	if err != nil {
		t.Fatal(err)
	}
	h := b.Check.GetAttributes().GetRequest().GetHttp()
	if len(h.GetHeaders()) != 0 {
		t.Errorf("headers = %v, want empty with raw_headers", h.GetHeaders())
	}
	var got []string
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		if hv.GetValue() != "" {
			t.Errorf("header_map %s has value %q, want raw_value only", hv.GetKey(), hv.GetValue())
		}
		got = append(got, hv.GetKey()+"="+string(hv.GetRawValue()))
	}
	joined := strings.Join(got, "|")
	for _, want := range []string{"x-agentos-user-id=admin|x-agentos-user-id=root", "authorization=Bearer T", ":path=/teams?limit=10"} {
		if !strings.Contains(joined, want) {
			t.Errorf("header_map = %s, want it to hold %s", joined, want)
		}
	}
}

func TestBuildRequestOmit(t *testing.T) {
	b, err := BuildRequest(conformance.Request{Omit: "attributes"}, nil)
	if err != nil || b.Check.GetAttributes() != nil {
		t.Errorf("omit attributes = %v, %v", b.Check, err)
	}
	b, err = BuildRequest(conformance.Request{Omit: "http"}, nil)
	if err != nil || b.Check.GetAttributes().GetRequest() == nil || b.Check.GetAttributes().GetRequest().GetHttp() != nil {
		t.Errorf("omit http = %v, %v", b.Check, err)
	}
	if _, err := BuildRequest(conformance.Request{Omit: "body"}, nil); err == nil {
		t.Error("omit body: no error")
	}
}

// TestJoinHeadersMatchesEnvoy checks the joining rules against the two
// Envoy fixtures (proto/envoy-fixtures) recorded from the same request:
// raw-header-map.json (one entry per line) and repeated-headers-joined.json
// (Envoy's default).
func TestJoinHeadersMatchesEnvoy(t *testing.T) {
	root, err := conformance.Root()
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) *authv3.CheckRequest {
		b, err := os.ReadFile(filepath.Join(root, "proto", "envoy-fixtures", name))
		if err != nil {
			t.Fatal(err)
		}
		var req authv3.CheckRequest
		if err := protojson.Unmarshal(b, &req); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return &req
	}
	raw := read("raw-header-map.json").GetAttributes().GetRequest().GetHttp().GetHeaderMap().GetHeaders()
	joined := read("repeated-headers-joined.json").GetAttributes().GetRequest().GetHttp().GetHeaders()
	var lines []conformance.HeaderLine
	for _, hv := range raw {
		lines = append(lines, conformance.HeaderLine{Key: hv.GetKey(), Value: string(hv.GetRawValue())})
	}
	if got := JoinHeaders(lines); !reflect.DeepEqual(got, joined) {
		t.Errorf("JoinHeaders(raw-header-map) = %v\nwant (repeated-headers-joined) %v", got, joined)
	}
}
