package harness

import (
	"reflect"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func opt(key, value string, action corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, Value: value}, AppendAction: action}
}

func legacy(key, value string, appendFlag bool) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, Value: value}, Append: wrapperspb.Bool(appendFlag)}
}

func TestApplyOK(t *testing.T) {
	client := Headers{
		{Key: ":path", Value: "/a", FromClient: true},
		{Key: "x-agentos-user-id", Value: "admin", FromClient: true},
		{Key: "x-agentos-user-id", Value: "root", FromClient: true},
		{Key: "x-agentos-scopes", Value: "agent_os:admin", FromClient: true},
		{Key: "x-other", Value: "o", FromClient: true},
	}
	set := func(k, v string) Header { return Header{Key: k, Value: v} }
	cl := func(k, v string) Header { return Header{Key: k, Value: v, FromClient: true} }
	tests := []struct {
		name string
		ok   *authv3.OkHttpResponse
		want Headers
	}{
		{
			name: "nil ok_response leaves the request",
			want: client,
		},
		{
			name: "overwrite replaces every line, remove drops the rest",
			ok: &authv3.OkHttpResponse{
				Headers:         []*corev3.HeaderValueOption{opt("X-AgentOS-User-Id", "u1", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD), opt("x-agentos-auth", "jwt", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)},
				HeadersToRemove: []string{"X-AgentOS-Scopes", ":path", "host"},
			},
			want: Headers{cl(":path", "/a"), set("x-agentos-user-id", "u1"), cl("x-other", "o"), set("x-agentos-auth", "jwt")},
		},
		{
			name: "default append action adds a line beside the client's",
			ok:   &authv3.OkHttpResponse{Headers: []*corev3.HeaderValueOption{opt("x-agentos-scopes", "a", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD)}},
			want: append(append(Headers{}, client...), set("x-agentos-scopes", "a")),
		},
		{
			name: "add if absent",
			ok: &authv3.OkHttpResponse{Headers: []*corev3.HeaderValueOption{
				opt("x-other", "new", corev3.HeaderValueOption_ADD_IF_ABSENT), opt("x-new", "n", corev3.HeaderValueOption_ADD_IF_ABSENT),
			}},
			want: append(append(Headers{}, client...), set("x-new", "n")),
		},
		{
			name: "overwrite if exists",
			ok: &authv3.OkHttpResponse{Headers: []*corev3.HeaderValueOption{
				opt("x-other", "new", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS), opt("x-new", "n", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS),
			}},
			want: Headers{client[0], client[1], client[2], client[3], set("x-other", "new")},
		},
		{
			name: "legacy append false overwrites, whatever append_action says",
			ok: &authv3.OkHttpResponse{Headers: []*corev3.HeaderValueOption{
				{Header: &corev3.HeaderValue{Key: "x-other", Value: "v"}, Append: wrapperspb.Bool(false), AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD},
			}},
			want: Headers{client[0], client[1], client[2], client[3], set("x-other", "v")},
		},
		{
			name: "legacy append true joins onto an existing value only",
			ok:   &authv3.OkHttpResponse{Headers: []*corev3.HeaderValueOption{legacy("x-other", "v", true), legacy("x-new", "n", true)}},
			want: Headers{client[0], client[1], client[2], client[3], cl("x-other", "o,v")},
		},
		{
			name: "raw_value wins",
			ok: &authv3.OkHttpResponse{Headers: []*corev3.HeaderValueOption{
				{Header: &corev3.HeaderValue{Key: "x-raw", Value: "ignored", RawValue: []byte("raw")}, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
			}},
			want: append(append(Headers{}, client...), set("x-raw", "raw")),
		},
		{
			name: "set then removed vanishes",
			ok: &authv3.OkHttpResponse{
				Headers:         []*corev3.HeaderValueOption{opt("x-agentos-auth", "jwt", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)},
				HeadersToRemove: []string{"x-agentos-auth"},
			},
			want: client,
		},
	}
	for _, tt := range tests {
		got, err := ApplyOK(client, tt.ok)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %v\nwant %v", tt.name, got, tt.want)
		}
	}
	if client[4].Value != "o" || len(client) != 5 {
		t.Errorf("ApplyOK modified its input: %v", client)
	}
	for name, ok := range map[string]*authv3.OkHttpResponse{
		"no header":      {Headers: []*corev3.HeaderValueOption{{}}},
		"empty key":      {Headers: []*corev3.HeaderValueOption{opt("", "v", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)}},
		"unknown action": {Headers: []*corev3.HeaderValueOption{opt("k", "v", 9)}},
	} {
		if _, err := ApplyOK(client, ok); err == nil {
			t.Errorf("ApplyOK(%s): no error", name)
		}
	}
}

func TestHeaderValues(t *testing.T) {
	opts := []*corev3.HeaderValueOption{
		opt("Content-Type", "application/json", 0),
		opt("set-cookie", "a=1", 0),
		opt("set-cookie", "b=2", 0),
		{Header: &corev3.HeaderValue{Key: "x-raw", RawValue: []byte("r")}},
	}
	for key, want := range map[string][]string{"content-type": {"application/json"}, "Set-Cookie": {"a=1", "b=2"}, "x-raw": {"r"}, "absent": nil} {
		if got := HeaderValues(opts, key); !reflect.DeepEqual(got, want) {
			t.Errorf("HeaderValues(%s) = %q, want %q", key, got, want)
		}
	}
}
