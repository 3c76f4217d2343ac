package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/envoy"
)

// TestServeLimits: the explicit server limits hold on the real listeners.
// A CheckRequest over envoy.MaxCheckRequestBytes is refused with RESOURCE_EXHAUSTED
// before it is decoded or decided; a header block over httpMaxHeaderBytes
// gets 431 from both HTTP listeners; requests within the limits are
// answered as before.
func TestServeLimits(t *testing.T) {
	h := newHarness(t)
	prefix, pub := keyPair(t, h)
	tok := h.mint("--key", prefix+".key.pem", "--alg", "ES256", "--aud", "test-os", "--sub", "alice", "--scopes", "agents:read")
	cfg := writeConfig(t, keyConfig(pub, "ES256"))
	srv := newHarness(t)
	r := startServe(t, srv, nil, 0, "--config", cfg, "--http-addr", "127.0.0.1:0")
	r.waitServing(t)
	httpAddr := listeningHTTPAddr(srv.stderr.String())
	if httpAddr == "" || httpAddr == "off" {
		t.Fatalf("no http_addr in the listening line:\n%s", srv.stderr)
	}

	t.Run("gRPC message over the limit", func(t *testing.T) {
		client := authv3.NewAuthorizationClient(r.conn)
		check := func(padding int) (*authv3.CheckResponse, error) {
			return client.Check(t.Context(), envoy.NewCheckRequest(envoy.RequestSpec{
				Path: "/agents", Token: tok, Headers: []authz.Header{{Name: "x-pad", Value: strings.Repeat("p", padding)}},
			}), grpc.MaxCallSendMsgSize(8<<20))
		}
		_, err := check(envoy.MaxCheckRequestBytes + 1)
		if status.Code(err) != codes.ResourceExhausted {
			t.Errorf("Check(%d-byte header) error = %v, want ResourceExhausted", envoy.MaxCheckRequestBytes+1, err)
		}
		resp, err := check(envoy.MaxCheckRequestBytes / 2)
		if err != nil || resp.GetStatus().GetCode() != int32(codes.OK) {
			t.Errorf("Check(%d-byte header) = %v, %v; want allowed (within the limit)", envoy.MaxCheckRequestBytes/2, resp.GetStatus(), err)
		}
	})

	send := func(t *testing.T, addr, path string, pad int) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Original-Uri", "/health")
		req.Header.Set("X-Original-Method", "GET")
		req.Header.Set("X-Pad", strings.Repeat("p", pad))
		client := &http.Client{Timeout: waitTimeout, Transport: &http.Transport{MaxResponseHeaderBytes: 1 << 20}}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s with a %d-byte header: %v", path, pad, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, l := range []struct{ name, addr, path string }{
		{"HTTP ext_authz", httpAddr, "/"},
		{"admin", r.adminAddr, "/healthz"},
	} {
		t.Run(l.name+" header block over the limit", func(t *testing.T) {
			// net/http allows 4 KiB beyond MaxHeaderBytes for the request line.
			if got := send(t, l.addr, l.path, httpMaxHeaderBytes+8<<10); got != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("%s: %d-byte header block = %d, want 431", l.name, httpMaxHeaderBytes+8<<10, got)
			}
			if got := send(t, l.addr, l.path, httpMaxHeaderBytes/2); got != http.StatusOK {
				t.Errorf("%s: %d-byte header block = %d, want 200 (within the limit)", l.name, httpMaxHeaderBytes/2, got)
			}
		})
	}

	t.Run("OPTIONS * asks the pipeline", func(t *testing.T) {
		conn, err := net.Dial("tcp", httpAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(waitTimeout))
		if _, err := conn.Write([]byte("OPTIONS * HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example.com\r\nConnection: close\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// net/http's own answer would be 200 with no body: an allow to a proxy.
		if resp.StatusCode != http.StatusBadRequest || string(body) != `{"detail": "Malformed request path"}` {
			t.Errorf("OPTIONS * = %d %s, want 400 {\"detail\": \"Malformed request path\"}", resp.StatusCode, body)
		}
	})

	t.Run("slow header block cut off", func(t *testing.T) {
		conn, err := net.Dial("tcp", httpAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// Half a request, never finished: the server closes the connection
		// after httpReadHeaderTimeout, rather than wait for ever.
		if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n")); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_ = conn.SetReadDeadline(start.Add(httpReadHeaderTimeout + waitTimeout))
		buf := make([]byte, 512)
		for {
			if _, err := conn.Read(buf); err != nil {
				break
			}
		}
		if took := time.Since(start); took > httpReadHeaderTimeout+waitTimeout/2 {
			t.Errorf("an unfinished header block kept the connection %v, want it closed after %v", took, httpReadHeaderTimeout)
		}
	})
}
