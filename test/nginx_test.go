package test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
	"github.com/agentos-authz/agentos-authz/test/harness"
)

// The HTTP ext_authz mode end to end (docs/CONTRACT.md §6): a real nginx, running
// the shipped envoy/deploy/nginx/nginx.conf moved to loopback ports, in
// front of an upstream that echoes what it receives, with the real binary
// as its auth_request service.

// shippedNginxConf is the deployment file the test runs.
const shippedNginxConf = "../envoy/deploy/nginx/nginx.conf"

// nginxBinary finds nginx, or fails: this test never skips. `make test`
// (and .ci/run through it) installs nginx with .ci/install-test-deps.sh.
func nginxBinary(t *testing.T) string {
	t.Helper()
	if bin, err := exec.LookPath("nginx"); err == nil {
		return bin
	}
	// Debian installs it in /usr/sbin, which a non-root PATH may lack.
	if fi, err := os.Stat("/usr/sbin/nginx"); err == nil && !fi.IsDir() {
		return "/usr/sbin/nginx"
	}
	t.Fatal("nginx is not installed: the HTTP ext_authz end-to-end test needs a real nginx. " +
		"Run `make test`, which installs nginx (.ci/install-test-deps.sh, Debian package nginx), " +
		"or install the nginx package yourself")
	return ""
}

// listeningAddr reads one address field (grpc_addr, http_addr, admin_addr)
// of the server's JSON "listening" log line.
func listeningAddr(t *testing.T, srv *harness.Server, field string) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(srv.Output()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil || line["msg"] != "listening" {
			continue
		}
		if v, ok := line[field].(string); ok && v != "" && v != "off" {
			return v
		}
	}
	t.Fatalf("no %s in the server's listening line\n%s", field, srv.Tail(20))
	return ""
}

// echoed is what the test upstream received, sent back as JSON.
type echoed struct {
	Method string      `json:"method"`
	URI    string      `json:"uri"`
	Header http.Header `json:"header"`
}

// echoUpstream is the AgentOS stand-in: it answers every request with what
// it received, and counts the requests.
type echoUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	hits int
}

func newEchoUpstream(t *testing.T) *echoUpstream {
	t.Helper()
	u := &echoUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.hits++
		u.mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{Method: r.Method, URI: r.RequestURI, Header: r.Header})
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *echoUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits
}

// nginxConf is the shipped configuration with its three addresses moved to
// loopback test ports, one worker, and (as root) workers that stay root so
// they can use the test's private temporary directory.
func nginxConf(t *testing.T, listen, authzAddr, upstreamAddr string) string {
	t.Helper()
	b, err := os.ReadFile(shippedNginxConf)
	if err != nil {
		t.Fatalf("the shipped nginx configuration: %v", err)
	}
	conf := string(b)
	for _, r := range [][2]string{
		{"listen 8080;", "listen " + listen + ";"},
		{"server 127.0.0.1:8181;", "server " + authzAddr + ";"},
		{"server 127.0.0.1:7777;", "server " + upstreamAddr + ";"},
		{"worker_processes auto;", "worker_processes 1;"},
	} {
		if strings.Count(conf, r[0]) != 1 {
			t.Fatalf("%s no longer holds %q once: update this test with it", shippedNginxConf, r[0])
		}
		conf = strings.Replace(conf, r[0], r[1], 1)
	}
	if os.Geteuid() == 0 {
		// nginx's workers would otherwise switch to "nobody", which cannot
		// enter t.TempDir() (mode 0700).
		conf = "user root;\n" + conf
	}
	return conf
}

// runningNginx is an nginx master process started by the test.
type runningNginx struct {
	addr   string
	dir    string
	cmd    *exec.Cmd
	stderr *harness.LockedBuffer
	done   chan struct{}
}

// logs is nginx's stderr and error.log, for failure messages.
func (n *runningNginx) logs() string {
	errLog, _ := os.ReadFile(filepath.Join(n.dir, "logs", "error.log"))
	return "nginx stderr:\n" + n.stderr.String() + "\nnginx logs/error.log:\n" + string(errLog)
}

// stop ends nginx with SIGTERM (fast shutdown: the master stops its
// workers; SIGKILL would orphan them) and waits for it.
func (n *runningNginx) stop(t *testing.T) {
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(harness.DefaultStopTimeout)
	defer timer.Stop()
	select {
	case <-n.done:
	case <-timer.C:
		_ = n.cmd.Process.Kill()
		<-n.done
		t.Errorf("nginx did not stop on SIGTERM within %v\n%s", harness.DefaultStopTimeout, n.logs())
	}
}

// do sends method path with headers through nginx and returns the response
// and its whole body.
func (n *runningNginx) do(t *testing.T, client *http.Client, method, path string, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+n.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s through nginx: %v\n%s", method, path, err, n.logs())
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// startNginx runs nginx in the foreground with conf(listen) on a free
// loopback port, retrying with another port when one was taken between
// choosing and binding it. It returns once nginx accepts connections.
func startNginx(t *testing.T, bin string, conf func(listen string) string) *runningNginx {
	t.Helper()
	var last error
	for range 3 {
		addrs, err := harness.FreeAddrs(1)
		if err != nil {
			t.Fatal(err)
		}
		n, err := tryNginx(t, bin, addrs[0], conf(addrs[0]))
		if err == nil {
			return n
		}
		last = err
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	t.Fatal(last)
	return nil
}

func tryNginx(t *testing.T, bin, addr, conf string) (*runningNginx, error) {
	dir := t.TempDir()
	for _, sub := range []string{"logs", "temp"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	n := &runningNginx{addr: addr, dir: dir, stderr: &harness.LockedBuffer{}, done: make(chan struct{})}
	// -p: relative paths (logs/, temp/, the pid file) resolve in dir;
	// -e: errors before the configuration is read go to stderr.
	n.cmd = exec.Command(bin, "-p", dir+string(filepath.Separator), "-c", confPath, "-e", "stderr", "-g", "daemon off;")
	n.cmd.Stdout, n.cmd.Stderr = n.stderr, n.stderr
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		_ = n.cmd.Wait()
		close(n.done)
	}()
	deadline := time.Now().Add(harness.DefaultStartTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.Close()
			t.Cleanup(func() { n.stop(t) })
			return n, nil
		}
		select {
		case <-n.done:
			return nil, fmt.Errorf("nginx exited before listening on %s (%s)\n%s", addr, n.cmd.ProcessState, n.logs())
		case <-t.Context().Done():
			n.stop(t)
			return nil, t.Context().Err()
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			n.stop(t)
			return nil, fmt.Errorf("nginx did not listen on %s within %v\n%s", addr, harness.DefaultStartTimeout, n.logs())
		}
	}
}

// TestNginxAuthRequest: requests through a real nginx reach the client as
// agentos-authz decided: 200 with the identity headers at the upstream,
// 400/401/403 with the JSON detail; a client-sent x-agentos-* header or
// X-Original-URI never reaches the upstream or names the checked request.
func TestNginxAuthRequest(t *testing.T) {
	bin := nginxBinary(t)
	h := startHS256(t, "--http-addr", "127.0.0.1:0")
	httpAddr := listeningAddr(t, h.srv, "http_addr")
	up := newEchoUpstream(t)
	ngx := startNginx(t, bin, func(listen string) string {
		return nginxConf(t, listen, httpAddr, strings.TrimPrefix(up.URL, "http://"))
	})

	mint := func(user string, scopes ...string) string {
		tok, err := h.minter.Mint(tokenSpec(user, scopes...))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	reader := mint("reader-1", "agents:read")
	expiredClaims, _ := json.Marshal(map[string]any{"sub": "late", "aud": "test-os", "exp": "-1h", "iat": "-2h", "scopes": []string{"agents:read"}})
	expired, err := h.minter.Mint(conformance.TokenSpec{Alg: "HS256", Key: "hs", Claims: expiredClaims})
	if err != nil {
		t.Fatal(err)
	}

	const spoofedUser = "admin-spoof"
	// forged are client-sent x-agentos-* headers, names agentos-authz sets and names it
	// does not (only nginx's more_clear_input_headers removes those), on every allowed
	// request below.
	forged := map[string]string{
		"X-Agentos-User-Id":     spoofedUser,
		"X-Agentos-Claim-Email": "root@forged.example",
		"X-Agentos-Claim-Role":  "agent_os:admin",
		"X-Agentos-Foo":         spoofedUser,
		"x-agentos-scopes":      "agent_os:admin",
	}
	withForged := func(h map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range forged {
			out[k] = v
		}
		for k, v := range h {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name       string
		method     string
		path       string
		header     map[string]string
		wantStatus int
		wantDetail string            // denials
		wantHeader map[string]string // denials: reply headers at the client
		// allows: the headers the upstream must receive; "" = absent
		wantUpstream map[string]string
	}{
		{
			name: "allowed: identity replaces the client's", method: "GET", path: "/agents?limit=5",
			header: withForged(map[string]string{
				"Authorization": "Bearer " + reader, "X-Agentos-User-Id": spoofedUser, "X-Agentos-Scopes": "agent_os:admin",
				"X-Agentos-Accessible-Ids": `["x"]`, "X-Original-URI": "/health", "X-Forwarded-Uri": "/health",
			}),
			wantStatus: 200,
			wantUpstream: map[string]string{
				"X-Agentos-User-Id": "reader-1", "X-Agentos-Scopes": "agents:read", "X-Agentos-Auth": "jwt",
				"X-Agentos-Accessible-Ids": "", "X-Agentos-Session-Id": "",
			},
		},
		{
			name: "excluded route: no identity, the client's removed", method: "GET", path: "/health",
			header:       withForged(map[string]string{"Authorization": "Bearer " + reader}),
			wantStatus:   200,
			wantUpstream: map[string]string{"X-Agentos-Auth": "none", "X-Agentos-User-Id": "", "X-Agentos-Scopes": ""},
		},
		{
			name: "preflight: no credential needed, the client's identity removed", method: "OPTIONS", path: "/agents",
			header:       withForged(map[string]string{"Origin": "https://app.example.com", "X-Agentos-Auth": "jwt"}),
			wantStatus:   200,
			wantUpstream: map[string]string{"X-Agentos-Auth": "none", "X-Agentos-User-Id": ""},
		},
		{
			name: "no credential", method: "GET", path: "/agents",
			header:     map[string]string{"X-Agentos-User-Id": spoofedUser, "Origin": "https://app.example.com"},
			wantStatus: 401, wantDetail: "Authorization header missing",
			wantHeader: map[string]string{"Www-Authenticate": "Bearer", "Access-Control-Allow-Origin": "https://app.example.com"},
		},
		{
			name: "expired token", method: "GET", path: "/agents",
			header:     map[string]string{"Authorization": "Bearer " + expired},
			wantStatus: 401, wantDetail: "Token has expired",
			wantHeader: map[string]string{"Www-Authenticate": "Bearer"},
		},
		{
			name: "insufficient scope", method: "POST", path: "/agents/web/runs",
			header:     map[string]string{"Authorization": "Bearer " + reader},
			wantStatus: 403, wantDetail: "Insufficient permissions. Required scope(s): agents:run",
			wantHeader: map[string]string{"Www-Authenticate": ""},
		},
		{
			name: "client-sent X-Original-URI cannot pick the checked path", method: "GET", path: "/config",
			header:     map[string]string{"Authorization": "Bearer " + reader, "X-Original-URI": "/agents", "X-Original-Method": "GET"},
			wantStatus: 403, wantDetail: "Insufficient permissions. Required scope(s): config:read",
		},
		{
			name: "ambiguous path", method: "GET", path: "/agents/a%2Fb",
			header:     map[string]string{"Authorization": "Bearer " + reader},
			wantStatus: 400, wantDetail: "Malformed request path",
		},
	}
	client := &http.Client{Timeout: 30 * time.Second}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hitsBefore := up.count()
			resp, body := ngx.do(t, client, tt.method, tt.path, tt.header)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("%s %s through nginx = %d %s, want %d\n%s\n%s", tt.method, tt.path, resp.StatusCode, body, tt.wantStatus, ngx.logs(), h.srv.Tail(20))
			}
			if tt.wantStatus != http.StatusOK {
				checkDenial(t, resp, body, tt.wantDetail, tt.wantHeader)
				if n := up.count(); n != hitsBefore {
					t.Errorf("a denied request reached the upstream (%d requests)", n-hitsBefore)
				}
				return
			}
			var got echoed
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("upstream echo %s: %v", body, err)
			}
			if got.Method != tt.method || got.URI != tt.path {
				t.Errorf("upstream received %s %s, want %s %s", got.Method, got.URI, tt.method, tt.path)
			}
			for k, want := range tt.wantUpstream {
				vals := got.Header.Values(k)
				switch {
				case want == "" && len(vals) > 0:
					t.Errorf("upstream header %s = %q, want it absent", k, vals)
				case want != "" && (len(vals) != 1 || vals[0] != want):
					t.Errorf("upstream header %s = %q, want exactly [%q]", k, vals, want)
				}
			}
			for k, vals := range got.Header {
				// Only what agentos-authz set may arrive under x-agentos-*.
				if want := tt.wantUpstream[k]; strings.HasPrefix(strings.ToLower(k), "x-agentos-") && want == "" {
					t.Errorf("upstream received %s: %q, which agentos-authz did not set", k, vals)
				}
				for _, v := range vals {
					if v == spoofedUser || strings.Contains(v, "agent_os:admin") || strings.Contains(v, "forged") {
						t.Errorf("the client's identity reached the upstream: %s: %s", k, v)
					}
				}
			}
		})
	}
	noPanics(t, h.srv)
	if out := h.srv.Output(); strings.Contains(out, reader) || strings.Contains(out, expired) {
		t.Error("the service logged a token")
	}
}

// TestNginxShadowDecision: in mode: shadow (README.md, "Shadow mode"), the
// shipped nginx.conf lets every would-be denial through to the upstream
// with x-agentos-shadow-decision: <status> <reason>, an allowed request with
// "200 allowed" and its identity; the header a client sends under that name
// never reaches the upstream; a malformed path is still refused.
func TestNginxShadowDecision(t *testing.T) {
	bin := nginxBinary(t)
	h := startHS256With(t, `{"mode": "shadow"}`, "--http-addr", "127.0.0.1:0")
	httpAddr := listeningAddr(t, h.srv, "http_addr")
	up := newEchoUpstream(t)
	ngx := startNginx(t, bin, func(listen string) string {
		return nginxConf(t, listen, httpAddr, strings.TrimPrefix(up.URL, "http://"))
	})
	reader, err := h.minter.Mint(tokenSpec("reader-1", "agents:read"))
	if err != nil {
		t.Fatal(err)
	}
	const header = "X-Agentos-Shadow-Decision"
	tests := []struct {
		name   string
		method string
		path   string
		token  string
		// forged is a client-sent X-Agentos-Shadow-Decision, "" for none.
		forged string
		// wantStatus is the status at the client; wantShadow the header at the
		// upstream (the request must reach it when wantStatus is 200).
		wantStatus int
		wantShadow string
		wantUser   string // X-Agentos-User-Id at the upstream, "" = absent
	}{
		{name: "no token", method: "GET", path: "/agents", wantStatus: 200, wantShadow: "401 missing_credential"},
		{name: "wrong scope", method: "POST", path: "/agents/web/runs", token: reader, wantStatus: 200, wantShadow: "403 insufficient_scopes"},
		{name: "allowed", method: "GET", path: "/agents", token: reader, wantStatus: 200, wantShadow: "200 allowed", wantUser: "reader-1"},
		{name: "no token, the client claims an allow", method: "GET", path: "/agents", forged: "200 allowed",
			wantStatus: 200, wantShadow: "401 missing_credential"},
		{name: "allowed, the client claims a denial", method: "GET", path: "/agents", token: reader, forged: "401 missing_credential",
			wantStatus: 200, wantShadow: "200 allowed", wantUser: "reader-1"},
		{name: "malformed path still refused", method: "GET", path: "/agents/a%2Fb", token: reader, forged: "200 allowed", wantStatus: 400},
	}
	client := &http.Client{Timeout: 30 * time.Second}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hitsBefore := up.count()
			sent := map[string]string{}
			if tt.token != "" {
				sent["Authorization"] = "Bearer " + tt.token
			}
			if tt.forged != "" {
				sent[header] = tt.forged
			}
			resp, body := ngx.do(t, client, tt.method, tt.path, sent)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("%s %s through nginx in shadow mode = %d %s, want %d\n%s", tt.method, tt.path, resp.StatusCode, body, tt.wantStatus, ngx.logs())
			}
			if tt.wantStatus != http.StatusOK {
				if n := up.count(); n != hitsBefore {
					t.Errorf("a refused request reached the upstream (%d requests)", n-hitsBefore)
				}
				return
			}
			var got echoed
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("upstream echo %s: %v", body, err)
			}
			if vals := got.Header.Values(header); len(vals) != 1 || vals[0] != tt.wantShadow {
				t.Errorf("%s %s: upstream %s = %q, want exactly [%q]", tt.method, tt.path, header, vals, tt.wantShadow)
			}
			if vals := got.Header.Values("X-Agentos-User-Id"); (tt.wantUser == "" && len(vals) > 0) ||
				(tt.wantUser != "" && (len(vals) != 1 || vals[0] != tt.wantUser)) {
				t.Errorf("%s %s: upstream X-Agentos-User-Id = %q, want %q", tt.method, tt.path, vals, tt.wantUser)
			}
		})
	}
	noPanics(t, h.srv)
}

// checkDenial checks a denial at the client: the JSON body with the
// detail, its content type and the wanted headers ("" = absent).
func checkDenial(t *testing.T, resp *http.Response, body []byte, wantDetail string, wantHeader map[string]string) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("denial content-type = %q, want application/json (agentos-authz's reply, not nginx's page)", ct)
	}
	var got struct {
		Detail *string `json:"detail"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil || got.Detail == nil {
		t.Fatalf("denial body = %s, want {\"detail\": ...} (%v)", body, err)
	}
	if *got.Detail != wantDetail {
		t.Errorf("detail = %q, want %q", *got.Detail, wantDetail)
	}
	for k, want := range wantHeader {
		if g := resp.Header.Get(k); g != want {
			t.Errorf("denial header %s = %q, want %q", k, g, want)
		}
	}
}
