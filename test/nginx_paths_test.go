package test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The path-bypass suite (docs/CONTRACT.md §5, ambiguous paths): through a real
// nginx running the shipped configuration, every class of ambiguous path
// either reaches the upstream as exactly the target that agentos-authz
// checked (nginx passes $request_uri both to the check, as X-Original-URI,
// and to AgentOS), or is refused by nginx or by agentos-authz — never
// normalised by one and judged in another form by the other.

// rawUpstream is an AgentOS stand-in that records the request target of
// every request line nginx sends it, byte for byte (net/http would refuse
// some targets itself and hide that nginx forwarded them).
type rawUpstream struct {
	ln      net.Listener
	mu      sync.Mutex
	targets []string
}

func newRawUpstream(t *testing.T) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go u.serve(conn)
		}
	}()
	return u
}

func (u *rawUpstream) serve(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		parts := strings.SplitN(strings.TrimRight(line, "\r\n"), " ", 3)
		target := ""
		if len(parts) == 3 {
			target = parts[1]
		}
		u.mu.Lock()
		u.targets = append(u.targets, target)
		u.mu.Unlock()
		for { // headers; the suite's requests have no body
			h, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if h == "\r\n" || h == "\n" {
				break
			}
		}
		body := "upstream:" + target
		if _, err := io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "+
			strconv.Itoa(len(body))+"\r\n\r\n"+body); err != nil {
			return
		}
	}
}

// take returns and clears the targets received so far.
func (u *rawUpstream) take() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := u.targets
	u.targets = nil
	return out
}

// rawGet sends one request with target as is and returns the status.
func rawGet(t *testing.T, addr, target, token string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, "GET "+target+" HTTP/1.1\r\nHost: app.example.com\r\nAuthorization: Bearer "+token+"\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %q: reading the reply: %v", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestNginxPathBypass(t *testing.T) {
	bin := nginxBinary(t)
	h := startHS256(t, "--http-addr", "127.0.0.1:0")
	httpAddr := listeningAddr(t, h.srv, "http_addr")
	up := newRawUpstream(t)
	ngx := startNginx(t, bin, func(listen string) string {
		return nginxConf(t, listen, httpAddr, up.ln.Addr().String())
	})
	// agents:read only: /agents... is allowed, /config (config:read) is not;
	// /health is an excluded route. Each attempt tries to reach /config
	// through a path that looks allowed or excluded.
	reader, err := h.minter.Mint(tokenSpec("reader-1", "agents:read"))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		class   string
		targets []string
		// allowed: the class is not ambiguous (docs/CONTRACT.md §5); the request
		// must reach the upstream unchanged. Otherwise it must be refused.
		allowed bool
	}{
		{class: "dot segments", targets: []string{"/agents/../config", "/health/../config", "/agents/./x", "/agents/..", "/./agents", "/health/.."}},
		{class: "encoded dot segments", targets: []string{"/agents/%2e%2e/config", "/health/%2E%2E/config", "/agents/%2e/x", "/health/.%2e/config", "/agents/%2e"}},
		{class: "empty segments", targets: []string{"//config", "/agents//x", "/health//../config", "//health", "/agents/x//"}},
		{class: "raw backslash", targets: []string{"/agents\\..\\config", "/health\\..\\config", "/agents/a\\b"}},
		{class: "encoded backslash", targets: []string{"/agents%5C..%5Cconfig", "/health%5c..%5cconfig", "/agents/a%5Cb"}},
		{class: "encoded slash", targets: []string{"/agents%2F..%2Fconfig", "/health%2f..%2fconfig", "/agents/a%2Fb"}},
		{class: "NUL and control characters", targets: []string{"/agents%00", "/health%00/../config", "/agents/%0a", "/agents/%7f", "/agents/%1b[2J", "/agents/%09x"}},
		{class: "invalid percent-encoding", targets: []string{"/agents/%zz", "/agents/%2", "/agents/%", "/health/%g0"}},
		{class: "invalid UTF-8", targets: []string{"/agents/%ff", "/agents/%c0%af", "/health/%ed%a0%80", "/agents/%e2%82"}},
		{class: "trailing slash", targets: []string{"/agents/", "/agents/web/"}, allowed: true},
		{class: "double encoding", targets: []string{"/agents/a%252Fb", "/agents/%252e%252e"}, allowed: true},
	}
	for _, tt := range tests {
		t.Run(tt.class, func(t *testing.T) {
			for _, target := range tt.targets {
				up.take()
				status, body := rawGet(t, ngx.addr, target, reader)
				got := up.take()
				switch {
				case len(got) > 1:
					t.Errorf("GET %q reached the upstream %d times: %q", target, len(got), got)
				case len(got) == 1 && got[0] != target:
					// nginx forwarded a different form than agentos-authz checked.
					t.Errorf("GET %q reached the upstream as %q: the checked and the served path differ", target, got[0])
				case len(got) == 1 && !tt.allowed:
					t.Errorf("GET %q (%s) reached the upstream (%d): an ambiguous path must be refused", target, tt.class, status)
				case len(got) == 1 && status != http.StatusOK:
					t.Errorf("GET %q = %d after reaching the upstream", target, status)
				case len(got) == 0 && tt.allowed:
					t.Errorf("GET %q = %d %q, want 200 at the upstream unchanged", target, status, body)
				case len(got) == 0 && status == http.StatusOK:
					t.Errorf("GET %q = 200 without reaching the upstream", target)
				}
				t.Logf("%-28q -> %d, upstream %q", target, status, got)
			}
		})
	}
	noPanics(t, h.srv)
}
