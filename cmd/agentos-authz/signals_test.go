package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/agentos-authz/agentos-authz/internal/poll"
	"github.com/agentos-authz/agentos-authz/internal/serveconfig"
)

// listeningHTTPAddr finds http_addr in the JSON "listening" log line.
func listeningHTTPAddr(logs string) string {
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line struct {
			Msg  string `json:"msg"`
			HTTP string `json:"http_addr"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
			return line.HTTP
		}
	}
	return ""
}

// httpDo sends method url with header and returns status, headers, body.
func httpDo(t *testing.T, method, url string, header map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

// metricValue finds the sample line "name{labels} value" in a /metrics
// text and returns its value text ("" when absent).
func metricValue(text, series string) string {
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// TestServeHTTPModeAndMetrics runs the real service with the HTTP listener
// on: HTTP checks answer as docs/CONTRACT.md §6 says, and /metrics counts the
// checks of both transports.
func TestServeHTTPModeAndMetrics(t *testing.T) {
	h := newHarness(t)
	prefix, pub := keyPair(t, h)
	tok := h.mint("--key", prefix+".key.pem", "--alg", "ES256", "--aud", "test-os", "--sub", "alice", "--scopes", "agents:read")
	cfg := keyConfig(pub, "ES256")
	cfg["http"] = map[string]any{"path_prefix": "/ext"}
	srv := newHarness(t)
	r := startServe(t, srv, nil, 0, "--config", writeConfig(t, cfg), "--http-addr", "127.0.0.1:0")
	r.waitServing(t)
	httpAddr := listeningHTTPAddr(srv.stderr.String())
	if httpAddr == "" || httpAddr == serveconfig.HTTPAddrOff {
		t.Fatalf("no http_addr in the listening line:\n%s", srv.stderr)
	}
	base := "http://" + httpAddr

	tests := []struct {
		name       string
		method     string
		path       string
		header     map[string]string
		wantStatus int
		wantDetail string
		wantHeader map[string]string
	}{
		{name: "envoy mode allowed", method: "GET", path: "/ext/agents", header: map[string]string{"Authorization": "Bearer " + tok},
			wantStatus: 200, wantHeader: map[string]string{"X-Agentos-User-Id": "alice", "X-Agentos-Auth": "jwt"}},
		{name: "envoy mode no credential", method: "GET", path: "/ext/agents",
			wantStatus: 401, wantDetail: "Authorization header missing", wantHeader: map[string]string{"Www-Authenticate": "Bearer"}},
		{name: "nginx forbidden", method: "GET", path: "/_authz",
			header:     map[string]string{"Authorization": "Bearer " + tok, "X-Original-URI": "/agents/web/runs", "X-Original-Method": "POST"},
			wantStatus: 403, wantDetail: "Insufficient permissions. Required scope(s): agents:run"},
		{name: "traefik allowed", method: "GET", path: "/",
			header:     map[string]string{"Authorization": "Bearer " + tok, "X-Forwarded-Uri": "/agents", "X-Forwarded-Method": "GET"},
			wantStatus: 200, wantHeader: map[string]string{"X-Agentos-Scopes": "agents:read"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, header, body := httpDo(t, tc.method, base+tc.path, tc.header)
			if status != tc.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", tc.method, tc.path, status, body, tc.wantStatus)
			}
			for k, v := range tc.wantHeader {
				if header.Get(k) != v {
					t.Errorf("header %s = %q, want %q", k, header.Get(k), v)
				}
			}
			if tc.wantDetail != "" && body != `{"detail": "`+tc.wantDetail+`"}` {
				t.Errorf("body = %s, want detail %q", body, tc.wantDetail)
			}
		})
	}
	// One more 401 over gRPC: the counter holds both transports.
	if _, err := r.check(t.Context(), "GET", "/agents", ""); err != nil {
		t.Fatal(err)
	}

	status, header, text := httpDo(t, "GET", "http://"+r.adminAddr+"/metrics", nil)
	if status != 200 || !strings.HasPrefix(header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics = %d %s", status, header.Get("Content-Type"))
	}
	for series, want := range map[string]string{
		`agentos_authz_checks_total{decision="allow",mode="enforce",reason="allowed",status="200"}`:            "2",
		`agentos_authz_checks_total{decision="deny",mode="enforce",reason="missing_credential",status="401"}`:  "2",
		`agentos_authz_checks_total{decision="deny",mode="enforce",reason="insufficient_scopes",status="403"}`: "1",
		`agentos_authz_checks_total{decision="deny",mode="enforce",reason="malformed_path",status="400"}`:      "0",
		`agentos_authz_check_duration_seconds_count{decision="allow"}`:                                         "2",
		`agentos_authz_config_loads_total{result="success"}`:                                                   "1",
		`agentos_authz_security_key_uses_total`:                                                                "0",
		`agentos_authz_jwks_fetches_total{result="success"}`:                                                   "0",
	} {
		if got := metricValue(text, series); got != want {
			t.Errorf("/metrics %s = %q, want %q", series, got, want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(text, "\n"+name+" ") {
			t.Errorf("/metrics lacks %s (Go and process collectors)", name)
		}
	}
	if strings.Contains(text, "alice") || strings.Contains(text, "/agents") {
		t.Error("/metrics holds a user id or a path")
	}
	if code := r.stop(t); code != 0 {
		t.Errorf("serve after cancel = exit %d, want 0", code)
	}
}

// TestServeHTTPNotReady: before the authorizer is ready, an HTTP check is
// 503 (an error to every proxy, so a denial), never an allow; once ready,
// it is decided.
func TestServeHTTPNotReady(t *testing.T) {
	fake := newBlockingAuthz(false)
	close(fake.release) // Decide answers at once
	cfg := testConfig(t)
	loopback := "127.0.0.1:0"
	cfg.HTTPAddr = loopback
	h := newHarness(t)
	s := h.sys("")
	ctx, cancel := context.WithCancel(t.Context())
	exit := make(chan int, 1)
	go func() {
		exit <- serve(ctx, cfg, newLogger(s.stderr, false, zap.DebugLevel), serveOptions{drainTimeout: waitTimeout, newAuthz: fake.factory}, s)
	}()
	defer func() {
		cancel()
		if code := <-exit; code != 0 {
			t.Errorf("serve = exit %d, want 0", code)
		}
	}()
	var addr string
	poll.For(t, "the listening line", func() bool {
		addr = listeningHTTPAddr(h.stderr.String())
		return addr != ""
	})
	status, header, body := httpDo(t, "GET", "http://"+addr+"/agents", nil)
	if status != http.StatusServiceUnavailable || header.Get("Content-Type") != "application/json" || !strings.Contains(body, `"detail"`) {
		t.Errorf("HTTP check before ready = %d %q %s, want 503 with a JSON detail", status, header.Get("Content-Type"), body)
	}
	fake.setReady()
	poll.For(t, "HTTP checks once ready", func() bool {
		status, _, _ = httpDo(t, "GET", "http://"+addr+"/agents", nil)
		return status == http.StatusOK
	})
}

func TestServeHTTPPortTaken(t *testing.T) {
	h := newHarness(t)
	_, pub := keyPair(t, h)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	args := []string{"serve", "--config", writeConfig(t, keyConfig(pub, "ES256")),
		"--grpc-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--http-addr", busy.Addr().String()}
	if code := h.run(args...); code != exitFault {
		t.Errorf("%s = exit %d, want %d", call(args), code, exitFault)
	}
	if want := "cannot listen for HTTP ext_authz on " + busy.Addr().String(); !strings.Contains(h.stderr.String(), want) {
		t.Errorf("stderr = %q, want %q", h.stderr, want)
	}
}

func TestHTTPGate(t *testing.T) {
	g := &httpGate{}
	w := httptest.NewRecorder()
	g.ServeHTTP(w, httptest.NewRequest("GET", "/agents", nil))
	if w.Code != http.StatusServiceUnavailable || !json.Valid(w.Body.Bytes()) {
		t.Errorf("gate before set = %d %s, want 503 with JSON", w.Code, w.Body)
	}
	g.set(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	w = httptest.NewRecorder()
	g.ServeHTTP(w, httptest.NewRequest("GET", "/agents", nil))
	if w.Code != http.StatusTeapot {
		t.Errorf("gate after set = %d, want the handler's %d", w.Code, http.StatusTeapot)
	}
}

// TestServeDevHTTPBanner: with the HTTP listener on, the dev banner prints
// curl commands; each, sent as written, gets the status its comment says.
func TestServeDevHTTPBanner(t *testing.T) {
	h := newHarness(t)
	runDev(t, h, "127.0.0.1:0", "# The same over HTTP")
	out := h.stdout.String()
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^export (\w+)='([^']+)'`).FindAllStringSubmatch(out, -1) {
		vars[m[1]] = m[2]
	}
	curls := regexp.MustCompile(`(?m)^curl -i -X (\S+)(?: -H "Authorization: Bearer \$(\w+)")? (http://\S+)\s+# (\d{3})`).FindAllStringSubmatch(out, -1)
	if len(curls) < 5 {
		t.Fatalf("banner has %d curl commands, want the 200/401/403 set:\n%s", len(curls), out)
	}
	for _, m := range curls {
		header := map[string]string{}
		if m[2] != "" {
			header["Authorization"] = "Bearer " + os.Expand("$"+m[2], func(k string) string { return vars[k] })
		}
		status, _, body := httpDo(t, m[1], m[3], header)
		if want := m[4]; strconv.Itoa(status) != want {
			t.Errorf("banner curl %s %s (token %s) = %d %s, want %s", m[1], m[3], m[2], status, body, want)
		}
	}
}
