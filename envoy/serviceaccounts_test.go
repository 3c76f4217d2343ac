package envoy

import (
	"net/http"
	"net/http/httptest"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/agentos-authz/agentos-authz/authz"
)

// TestClientAddr: the client whose failed service-account lookups are
// counted (docs/CONTRACT.md §8): Envoy's attributes.source.address over
// gRPC; in HTTP mode the last X-Forwarded-For entry, else the peer.
func TestClientAddr(t *testing.T) {
	cr := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "10.0.0.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 5555}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/"}},
	}}
	if got := FromCheckRequest(cr).ClientAddr; got != "10.0.0.7" {
		t.Errorf("gRPC ClientAddr = %q, want 10.0.0.7", got)
	}
	cr.Attributes.Source = nil
	if got := FromCheckRequest(cr).ClientAddr; got != "" {
		t.Errorf("gRPC ClientAddr without a source = %q, want empty", got)
	}
	for _, c := range []struct {
		xff  []string
		want string
	}{
		{nil, "192.0.2.1"},
		{[]string{"203.0.113.9"}, "203.0.113.9"},
		{[]string{"198.51.100.1, 203.0.113.9"}, "203.0.113.9"},
		{[]string{"198.51.100.1", "203.0.113.10 "}, "203.0.113.10"},
		{[]string{"198.51.100.1, "}, "192.0.2.1"},
	} {
		r := httptest.NewRequest(http.MethodGet, "http://authz.test/agents", nil)
		r.RemoteAddr = "192.0.2.1:40000"
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := FromHTTPRequest(r, "").ClientAddr; got != c.want {
			t.Errorf("X-Forwarded-For %q: ClientAddr = %q, want %q", c.xff, got, c.want)
		}
	}
}

// TestServiceAccountStatuses: 429 and 503 are denials with their own gRPC
// codes (docs/CONTRACT.md §5), never RPC errors, and keep their HTTP status.
func TestServiceAccountStatuses(t *testing.T) {
	for _, c := range []struct {
		status int
		code   codes.Code
	}{{429, codes.ResourceExhausted}, {503, codes.Unavailable}} {
		d := authz.Decision{Status: c.status, Detail: "x"}
		resp := ToCheckResponse(&d)
		if got := codes.Code(resp.GetStatus().GetCode()); got != c.code {
			t.Errorf("%d: gRPC code %v, want %v", c.status, got, c.code)
		}
		if got := int(resp.GetDeniedResponse().GetStatus().GetCode()); got != c.status {
			t.Errorf("%d: denied HTTP status %d", c.status, got)
		}
		w := httptest.NewRecorder()
		if err := WriteDecision(w, &d); err != nil || w.Code != c.status || w.Header().Get("Www-Authenticate") != "" {
			t.Errorf("%d over HTTP: %d, %v, www-authenticate %q", c.status, w.Code, err, w.Header().Get("Www-Authenticate"))
		}
	}
}
