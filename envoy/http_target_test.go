package envoy

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentos-authz/agentos-authz/authz"
)

// countingDecider counts the decisions the pipeline was asked for.
type countingDecider struct {
	Decider
	n atomic.Int64
}

func (c *countingDecider) Decide(ctx context.Context, r *authz.Request) authz.Decision {
	c.n.Add(1)
	return c.Decider.Decide(ctx, r)
}

// TestHTTPNonOriginFormTargets: in Envoy's HTTP service mode the request
// target is the checked path. A target that is not origin-form (OPTIONS *,
// absolute-form, authority-form) goes through the pipeline and gets 400
// Malformed request path (docs/CONTRACT.md §5), with a credential that would allow
// the path it names, with or without http.path_prefix, over a real
// listener configured as serve configures it.
func TestHTTPNonOriginFormTargets(t *testing.T) {
	reader := mintHS(t, "alice", "agents:read")
	for _, prefix := range []string{"", "/authz"} {
		dec := &countingDecider{Decider: newJWTAuthorizer(t, "")}
		srv := httptest.NewUnstartedServer(NewHTTPHandler(dec, HTTPOptions{PathPrefix: prefix}))
		srv.Config.DisableGeneralOptionsHandler = true
		srv.Start()
		t.Cleanup(srv.Close)
		for _, target := range []struct{ method, uri string }{
			{"OPTIONS", "*"},
			{"OPTIONS", "http://app.example.com" + prefix + "/agents"},
			{"GET", "http://app.example.com" + prefix + "/agents"},
			{"GET", "https://app.example.com:443" + prefix + "/agents?limit=1"},
			{"CONNECT", "app.example.com:443"},
		} {
			t.Run(prefix+" "+target.method+" "+target.uri, func(t *testing.T) {
				before := dec.n.Load()
				status, body := rawRequest(t, srv.Listener.Addr().String(),
					target.method+" "+target.uri+" HTTP/1.1\r\nHost: app.example.com\r\nAuthorization: Bearer "+reader+"\r\nOrigin: https://app.example.com\r\nConnection: close\r\n\r\n")
				if status != http.StatusBadRequest || body != `{"detail": "Malformed request path"}` {
					t.Errorf("%s %s = %d %s, want 400 {\"detail\": \"Malformed request path\"}", target.method, target.uri, status, body)
				}
				if got := dec.n.Load() - before; got != 1 {
					t.Errorf("%s %s: the pipeline was asked %d times, want once", target.method, target.uri, got)
				}
			})
		}
	}
}

// TestHTTPAsteriskDirect: the handler itself, without a server in front.
func TestHTTPAsteriskDirect(t *testing.T) {
	h := NewHTTPHandler(newJWTAuthorizer(t, ""), HTTPOptions{})
	r := httptest.NewRequest(http.MethodOptions, "/", nil)
	r.RequestURI = "*"
	r.Header.Set("Origin", "https://app.example.com")
	got := serveCheck(t, h, r)
	if got.status != http.StatusBadRequest || got.body != `{"detail": "Malformed request path"}` {
		t.Errorf("OPTIONS * = %d %s, want 400 Malformed request path", got.status, got.body)
	}
	if got.header.Get("X-Agentos-Auth") != "" {
		t.Errorf("OPTIONS * carries x-agentos-auth %q: an allow", got.header.Get("X-Agentos-Auth"))
	}
}

// rawRequest writes one raw HTTP/1.1 request and reads the reply.
func rawRequest(t *testing.T, addr, raw string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the reply to %q: %v", raw, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK && resp.Header.Get("Content-Type") == "application/json" {
		var d struct{ Detail string }
		if json.Unmarshal(body, &d) != nil {
			t.Errorf("reply body %q is not JSON", body)
		}
	}
	return resp.StatusCode, string(body)
}
