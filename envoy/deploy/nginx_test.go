package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// ngxDirective is one directive of an nginx configuration, with its block if it has one.
type ngxDirective struct {
	name  string
	args  []string
	line  int
	block []*ngxDirective
}

// parseNginx parses nginx's configuration syntax: directives ending in ";", blocks in
// braces, "#" comments, single- or double-quoted arguments. It checks structure only;
// nginx -t checks directive names and arguments.
func parseNginx(data []byte) ([]*ngxDirective, error) {
	p := ngxParser{src: data, line: 1}
	dirs, err := p.block(0)
	if err != nil {
		return nil, err
	}
	return dirs, nil
}

type ngxParser struct {
	src  []byte
	pos  int
	line int
}

// token returns the next word, "{", "}" or ";", and "" at the end of input.
func (p *ngxParser) token() (tok string, quoted bool, err error) {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '\n':
			p.line++
			p.pos++
		case c == ' ' || c == '\t' || c == '\r':
			p.pos++
		case c == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		case c == '{' || c == '}' || c == ';':
			p.pos++
			return string(c), false, nil
		case c == '"' || c == '\'':
			start := p.line
			var b strings.Builder
			for p.pos++; p.pos < len(p.src); p.pos++ {
				switch ch := p.src[p.pos]; {
				case ch == '\\' && p.pos+1 < len(p.src):
					p.pos++
					b.WriteByte(p.src[p.pos])
				case ch == c:
					p.pos++
					return b.String(), true, nil
				default:
					if ch == '\n' {
						p.line++
					}
					b.WriteByte(ch)
				}
			}
			return "", false, fmt.Errorf("line %d: unterminated quoted string", start)
		default:
			start := p.pos
			for p.pos < len(p.src) && !strings.ContainsRune(" \t\r\n;{}#", rune(p.src[p.pos])) {
				p.pos++
			}
			return string(p.src[start:p.pos]), false, nil
		}
	}
	return "", false, nil
}

func (p *ngxParser) block(depth int) ([]*ngxDirective, error) {
	var dirs []*ngxDirective
	var cur *ngxDirective
	for {
		line := p.line
		tok, quoted, err := p.token()
		if err != nil {
			return nil, err
		}
		switch {
		case tok == "" && !quoted:
			if depth > 0 {
				return nil, fmt.Errorf("line %d: unexpected end of file, expecting \"}\"", p.line)
			}
			if cur != nil {
				return nil, fmt.Errorf("line %d: directive %q has no \";\"", cur.line, cur.name)
			}
			return dirs, nil
		case tok == ";" && !quoted:
			if cur == nil {
				return nil, fmt.Errorf("line %d: unexpected \";\"", p.line)
			}
			dirs, cur = append(dirs, cur), nil
		case tok == "{" && !quoted:
			if cur == nil {
				return nil, fmt.Errorf("line %d: unexpected \"{\"", p.line)
			}
			if cur.block, err = p.block(depth + 1); err != nil {
				return nil, err
			}
			if cur.block == nil {
				cur.block = []*ngxDirective{}
			}
			dirs, cur = append(dirs, cur), nil
		case tok == "}" && !quoted:
			if depth == 0 {
				return nil, fmt.Errorf("line %d: unexpected \"}\"", p.line)
			}
			if cur != nil {
				return nil, fmt.Errorf("line %d: directive %q has no \";\"", cur.line, cur.name)
			}
			return dirs, nil
		case cur == nil:
			cur = &ngxDirective{name: tok, line: line}
		default:
			cur.args = append(cur.args, tok)
		}
	}
}

// children returns the directives of a block with that name.
func children(dirs []*ngxDirective, name string) []*ngxDirective {
	var out []*ngxDirective
	for _, d := range dirs {
		if d.name == name {
			out = append(out, d)
		}
	}
	return out
}

// headerSet returns the proxy_set_header values of a location, keyed by lower-case name.
func headerSet(loc *ngxDirective) map[string]string {
	set := map[string]string{}
	for _, d := range children(loc.block, "proxy_set_header") {
		if len(d.args) == 2 {
			set[strings.ToLower(d.args[0])] = d.args[1]
		}
	}
	return set
}

func argsOf(dirs []*ngxDirective, name string) []string {
	if ds := children(dirs, name); len(ds) > 0 {
		return ds[len(ds)-1].args
	}
	return nil
}

// checkNginx checks the contract §6 wiring that nginx -t cannot: the auth subrequest
// carries the original method and URI and no body, the identity headers replace the
// client's, and denials reach the client with agentos-authz's JSON body.
func checkNginx(dirs []*ngxDirective) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	https := children(dirs, "http")
	if len(https) != 1 {
		return fmt.Errorf("want one http block, found %d", len(https))
	}
	upstreams := map[string]bool{}
	for _, u := range children(https[0].block, "upstream") {
		if len(u.args) == 1 {
			upstreams[u.args[0]] = true
		}
	}
	locations := map[string]*ngxDirective{}
	serverOf := map[*ngxDirective]*ngxDirective{}
	protected := 0
	for _, srv := range children(https[0].block, "server") {
		for _, loc := range children(srv.block, "location") {
			locations[strings.Join(loc.args, " ")] = loc
			serverOf[loc] = srv
		}
	}
	if !loadsHeadersMore(dirs) {
		fail("no load_module of %s: more_clear_input_headers is not available", headersMoreModule)
	}
	for key, loc := range locations {
		ar := argsOf(loc.block, "auth_request")
		if len(ar) != 1 || ar[0] == "off" {
			continue
		}
		protected++
		where := fmt.Sprintf("location %s (line %d)", key, loc.line)
		errs = append(errs, checkAuthLocation(where, locations["= "+ar[0]], ar[0], upstreams)...)
		errs = append(errs, checkIdentityHeaders(where, loc)...)
		errs = append(errs, checkNginxAuthorization(where, loc, https[0].block)...)
		if !clearsAgentosHeaders(https[0], serverOf[loc], loc) {
			fail("%s: no more_clear_input_headers 'X-Agentos-*' applies: a client-sent x-agentos-* header that agentos-authz does not set (x-agentos-claim-role, x-agentos-foo) would reach AgentOS", where)
		}
		errs = append(errs, checkDenials(where, loc, locations, upstreams)...)
	}
	if protected == 0 {
		fail("no location has auth_request")
	}
	return errors.Join(errs...)
}

// checkAuthProxy checks a location that asks agentos-authz about the current request.
func checkAuthProxy(where string, loc *ngxDirective, upstreams map[string]bool) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(where+": "+format, args...)) }
	pass := argsOf(loc.block, "proxy_pass")
	if len(pass) != 1 || !upstreams[strings.TrimPrefix(pass[0], "http://")] {
		fail("proxy_pass %v: want http://<an upstream block>", pass)
	}
	if body := argsOf(loc.block, "proxy_pass_request_body"); len(body) != 1 || body[0] != "off" {
		fail("proxy_pass_request_body off is required: the check needs no body")
	}
	set := headerSet(loc)
	want := map[string]string{
		"x-original-uri":    "$request_uri",
		"x-original-method": "$request_method",
		"content-length":    "",
		// Empty: the client's Traefik-style headers must not name another request.
		"x-forwarded-uri":    "",
		"x-forwarded-method": "",
	}
	for h, v := range want {
		switch got, ok := set[h]; {
		case !ok:
			fail("proxy_set_header %s %q is required (missing)", h, v)
		case got != v:
			fail("proxy_set_header %s %q is required (found %q)", h, v, got)
		}
	}
	return errs
}

func checkAuthLocation(where string, auth *ngxDirective, uri string, upstreams map[string]bool) []error {
	if auth == nil {
		return []error{fmt.Errorf("%s: auth_request %s has no exact location \"= %s\"", where, uri, uri)}
	}
	errs := checkAuthProxy(fmt.Sprintf("location = %s (line %d)", uri, auth.line), auth, upstreams)
	if len(children(auth.block, "internal")) == 0 {
		errs = append(errs, fmt.Errorf("location = %s: must be internal, or clients could call it", uri))
	}
	return errs
}

// headersMoreModule is the dynamic module with more_clear_input_headers; Debian's
// libnginx-mod-http-headers-more-filter installs it under /usr/lib/nginx/modules/.
const headersMoreModule = "ngx_http_headers_more_filter_module.so"

// loadsHeadersMore reports whether the main context loads the headers-more module.
func loadsHeadersMore(dirs []*ngxDirective) bool {
	for _, d := range children(dirs, "load_module") {
		if len(d.args) == 1 && filepath.Base(d.args[0]) == headersMoreModule {
			return true
		}
	}
	return false
}

// clearsAgentosHeaders reports whether the headers-more input-header directives in
// effect in loc clear every x-agentos-* header. headers-more inherits a level's
// directives only when the inner level has none of its own (more_set_input_headers
// included), so the innermost level that has any is the one in effect.
func clearsAgentosHeaders(http, srv, loc *ngxDirective) bool {
	for _, level := range []*ngxDirective{loc, srv, http} {
		if level == nil {
			continue
		}
		clears := children(level.block, "more_clear_input_headers")
		if len(clears) == 0 && len(children(level.block, "more_set_input_headers")) == 0 {
			continue
		}
		for _, d := range clears {
			// A wildcard clears every header whose name starts with what precedes
			// the "*", compared without regard to case (-t restricts it to some
			// content types: not wanted here).
			if slices.Contains(d.args, "-t") {
				continue
			}
			for _, a := range d.args {
				if strings.EqualFold(a, "x-agentos-*") {
					return true
				}
			}
		}
		return false
	}
	return false
}

// checkIdentityHeaders checks that each contract §5 header is captured from the auth reply
// and set on the upstream request, so an absent value clears the client's header.
func checkIdentityHeaders(where string, loc *ngxDirective) []error {
	var errs []error
	captured := map[string]string{}
	for _, d := range children(loc.block, "auth_request_set") {
		if len(d.args) == 2 {
			captured[d.args[1]] = d.args[0]
		}
	}
	set := headerSet(loc)
	for _, h := range agentosHeaders {
		if strings.HasPrefix(h, "x-agentos-claim-") {
			continue // one pair per configured forward_claims claim; none is configured here
		}
		upstreamVar := "$upstream_http_" + strings.ReplaceAll(h, "-", "_")
		v, ok := captured[upstreamVar]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: no auth_request_set from %s", where, upstreamVar))
			continue
		}
		if set[h] != v {
			errs = append(errs, fmt.Errorf("%s: proxy_set_header %s %s is required, or the client's %s reaches AgentOS", where, h, v, h))
		}
	}
	return errs
}

// checkDenials checks that 401 and 403 (and the 500 that auth_request makes of a 400) go
// to a named location that asks agentos-authz again and returns its reply.
func checkDenials(where string, loc *ngxDirective, locations map[string]*ngxDirective, upstreams map[string]bool) []error {
	var errs []error
	handled := map[string]string{}
	for _, d := range children(loc.block, "error_page") {
		if len(d.args) < 2 {
			continue
		}
		target := d.args[len(d.args)-1]
		for _, a := range d.args[:len(d.args)-1] {
			handled[a] = target
		}
		if !slices.Contains(d.args, "=") {
			errs = append(errs, fmt.Errorf("%s: error_page %v must use \"=\" so the reply keeps agentos-authz's status", where, d.args))
		}
	}
	for _, code := range []string{"401", "403", "500"} {
		target, ok := handled[code]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: no error_page for %s: the client would get nginx's page, not the JSON detail", where, code))
			continue
		}
		named := locations[target]
		if named == nil || !strings.HasPrefix(target, "@") {
			errs = append(errs, fmt.Errorf("%s: error_page %s goes to %s, want a named location that is defined", where, code, target))
			continue
		}
		errs = append(errs, checkAuthProxy(fmt.Sprintf("location %s (line %d)", target, named.line), named, upstreams)...)
	}
	return errs
}

func loadNginx(data []byte) error {
	dirs, err := parseNginx(data)
	if err != nil {
		return err
	}
	return checkNginx(dirs)
}

func TestNginxConfig(t *testing.T) {
	if err := loadNginx(readDeployFile(t, "nginx/nginx.conf")); err != nil {
		t.Errorf("nginx/nginx.conf:\n%v", err)
	}
}

func TestNginxValidatorsReject(t *testing.T) {
	conf := string(readDeployFile(t, "nginx/nginx.conf"))
	tests := []struct {
		name    string
		mutate  func(t *testing.T, s string) string
		wantErr string
	}{
		{
			name:    "unexpected brace",
			mutate:  func(t *testing.T, s string) string { return mustReplace(t, s, "events {\n", "events {\n{\n") },
			wantErr: `line 22: unexpected "{"`,
		},
		{
			name:    "unclosed block",
			mutate:  func(t *testing.T, s string) string { return replaceFirst(t, s, "    }\n}\n", "    }\n") },
			wantErr: `unexpected end of file, expecting "}"`,
		},
		{
			name: "missing semicolon",
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "worker_connections 1024;", "worker_connections 1024")
			},
			wantErr: `directive "worker_connections" has no ";"`,
		},
		{
			name:    "unterminated string",
			mutate:  func(_ *testing.T, s string) string { return s + "pid \"logs/other.pid;\n" },
			wantErr: "unterminated quoted string",
		},
		{
			name: "no auth_request",
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "            auth_request /_authz;\n", "")
			},
			wantErr: "no location has auth_request",
		},
		{
			name:    "check location reachable by clients",
			mutate:  func(t *testing.T, s string) string { return mustReplace(t, s, "            internal;\n", "") },
			wantErr: "must be internal",
		},
		{
			name: "body sent to the check",
			mutate: func(t *testing.T, s string) string {
				return replaceFirst(t, s, "proxy_pass_request_body off;", "proxy_pass_request_body on;")
			},
			wantErr: "proxy_pass_request_body off is required",
		},
		{
			name: "original URI not passed",
			mutate: func(t *testing.T, s string) string {
				return replaceFirst(t, s, "proxy_set_header X-Original-URI $request_uri;", "proxy_set_header X-Original-URI $uri;")
			},
			wantErr: "x-original-uri",
		},
		{
			name: "identity header not overwritten",
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "            proxy_set_header X-Agentos-Scopes         $agentos_scopes;\n", "")
			},
			wantErr: "proxy_set_header x-agentos-scopes $agentos_scopes is required",
		},
		{
			name: "identity token not forwarded",
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "            proxy_set_header Authorization $agentos_authorization;\n", "")
			},
			wantErr: "no proxy_set_header Authorization",
		},
		{
			name: "identity token without the client's fallback",
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "proxy_set_header Authorization $agentos_authorization;", "proxy_set_header Authorization $authz_authorization;")
			},
			wantErr: "falls back to $http_authorization",
		},
		{
			name: "headers-more not loaded",
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "load_module /usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so;\n", "")
			},
			wantErr: "no load_module of ngx_http_headers_more_filter_module.so",
		},
		{
			name: "client's x-agentos-* headers not cleared",
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "        more_clear_input_headers 'X-Agentos-*';\n", "")
			},
			wantErr: "no more_clear_input_headers 'X-Agentos-*' applies",
		},
		{
			name: "only some x-agentos-* headers cleared",
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "more_clear_input_headers 'X-Agentos-*';", "more_clear_input_headers 'X-Agentos-Claim-*';")
			},
			wantErr: "no more_clear_input_headers 'X-Agentos-*' applies",
		},
		{
			name: "a location's own headers-more directive hides the server's",
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "            auth_request /_authz;\n", "            auth_request /_authz;\n            more_set_input_headers 'X-Seen: 1';\n")
			},
			wantErr: "no more_clear_input_headers 'X-Agentos-*' applies",
		},
		{
			name: "identity header not captured",
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "            auth_request_set $agentos_auth           $upstream_http_x_agentos_auth;\n", "")
			},
			wantErr: "no auth_request_set from $upstream_http_x_agentos_auth",
		},
		{
			name: "client may name the checked path",
			mutate: func(t *testing.T, s string) string {
				return replaceFirst(t, s, "            proxy_set_header X-Forwarded-Uri \"\";\n", "")
			},
			wantErr: "x-forwarded-uri",
		},
		{
			name: "denials get nginx's page",
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "error_page 401 403 500 = @agentos_authz_denied;", "error_page 500 = @agentos_authz_denied;")
			},
			wantErr: "no error_page for 401",
		},
		{
			name: "denial location undefined",
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "location @agentos_authz_denied {", "location @authz_denied {")
			},
			wantErr: "want a named location that is defined",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := loadNginx([]byte(tt.mutate(t, conf)))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("loadNginx(%s) = %v, want an error containing %q", tt.name, err, tt.wantErr)
			}
			t.Logf("rejected: %v", err)
		})
	}
}

// nginxBinary returns the nginx binary, or fails: the shipped nginx.conf must be
// proven by a real nginx, and `make test` installs it (Debian package nginx)
// before running the suite. It never skips silently.
func nginxBinary(t *testing.T) string {
	t.Helper()
	if bin, err := exec.LookPath("nginx"); err == nil {
		return bin
	}
	// Debian installs it in /usr/sbin, which a non-root PATH may lack.
	if bin, err := exec.LookPath("/usr/sbin/nginx"); err == nil {
		return bin
	}
	t.Fatal("nginx is not installed: run `make test`, which installs it (Debian package nginx), or apt-get install nginx")
	return ""
}

// nginxPrefix lays out a prefix directory for a configuration with relative paths.
func nginxPrefix(t *testing.T, conf []byte) (dir, confPath string) {
	t.Helper()
	dir = t.TempDir()
	for _, sub := range []string{"logs", "temp"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	confPath = filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir + string(filepath.Separator), confPath
}

func TestNginxSyntax(t *testing.T) {
	bin := nginxBinary(t)
	dir, conf := nginxPrefix(t, readDeployFile(t, "nginx/nginx.conf"))
	out, err := exec.CommandContext(t.Context(), bin, "-t", "-p", dir, "-c", conf, "-e", filepath.Join(dir, "logs", "error.log")).CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t -c nginx/nginx.conf: %v\n%s", err, out)
	}
}

// TestNginxFlow runs the shipped nginx.conf, its ports moved to loopback test servers, in
// front of a stand-in agentos-authz and an upstream that echoes what it receives.
func TestNginxFlow(t *testing.T) {
	bin := nginxBinary(t)

	type seen struct {
		Method  string      `json:"method"`
		URI     string      `json:"uri"`
		Header  http.Header `json:"header"`
		BodyLen int         `json:"body_len"`
	}
	checks := make(chan seen, 16)
	authz := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		checks <- seen{Method: r.Method, URI: r.RequestURI, Header: r.Header.Clone(), BodyLen: len(body)}
		uri, method := r.Header.Get("X-Original-URI"), r.Header.Get("X-Original-Method")
		deny := func(status int, detail string) {
			w.Header().Set("Content-Type", "application/json")
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", "Bearer")
			}
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]string{"detail": detail})
		}
		switch {
		case strings.Contains(uri, "%2F"):
			deny(http.StatusBadRequest, "Malformed request path")
		case method == http.MethodOptions:
			w.Header().Set("X-Agentos-Auth", "none")
		case r.Header.Get("Authorization") == "":
			deny(http.StatusUnauthorized, "Authorization header missing")
		case strings.HasPrefix(uri, "/config"):
			deny(http.StatusForbidden, "Insufficient permissions. Required scope(s): config:read")
		default:
			// docs/CONTRACT.md §9: the identity token replaces the client's Authorization.
			w.Header().Set("Authorization", "Bearer reissued")
			w.Header().Set("X-Agentos-User-Id", "u1")
			w.Header().Set("X-Agentos-Auth", "jwt")
			w.Header().Set("X-Agentos-Scopes", "agents:read")
		}
	}))
	defer authz.Close()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(seen{Method: r.Method, URI: r.RequestURI, Header: r.Header, BodyLen: len(body)})
	}))
	defer upstream.Close()

	// A free loopback port for nginx: nginx binds it itself, so it is released first.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	front := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	conf := string(readDeployFile(t, "nginx/nginx.conf"))
	conf = mustReplace(t, conf, "listen 8080;", "listen "+front+";")
	conf = mustReplace(t, conf, "server 127.0.0.1:8181;", "server "+strings.TrimPrefix(authz.URL, "http://")+";")
	conf = mustReplace(t, conf, "server 127.0.0.1:7777;", "server "+strings.TrimPrefix(upstream.URL, "http://")+";")
	dir, confPath := nginxPrefix(t, []byte(conf))

	cmd := exec.CommandContext(t.Context(), bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "logs", "error.log"),
		"-g", "daemon off; master_process off;")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
			t.Logf("nginx stderr:\n%s\nerror.log:\n%s", stderr.String(), log)
		}
	})
	base := "http://" + front
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", front, 200*time.Millisecond)
		if err == nil {
			_ = conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %s: %v", front, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(20 * time.Millisecond):
		}
	}

	tests := []struct {
		name       string
		method     string
		path       string
		header     map[string]string
		body       string
		wantStatus int
		wantDetail string
		// on 200: headers the upstream must (or must not, value "") receive
		wantUpstream map[string]string
		// what the check must have been told
		wantCheckURI    string
		wantCheckMethod string
	}{
		{
			name: "allowed, identity replaces the client's headers", method: http.MethodPost, path: "/agents/web/runs?x=1",
			header: map[string]string{
				"Authorization":     "Bearer t",
				"X-Agentos-User-Id": "admin",
				"X-Agentos-Scopes":  "agent_os:admin",
				"X-Original-URI":    "/health",
				"X-Forwarded-Uri":   "/health",
				// Names agentos-authz does not set: only headers-more removes them.
				"X-Agentos-Claim-Email": "root@example.com",
				"X-Agentos-Claim-Role":  "admin",
				"X-Agentos-Foo":         "forged",
			},
			body:       `{"message":"hi"}`,
			wantStatus: http.StatusOK,
			wantUpstream: map[string]string{
				"X-Agentos-User-Id":        "u1",
				"X-Agentos-Scopes":         "agents:read",
				"X-Agentos-Auth":           "jwt",
				"X-Agentos-Session-Id":     "",
				"X-Agentos-Accessible-Ids": "",
				"Authorization":            "Bearer reissued",
				"X-Agentos-Claim-Email":    "",
				"X-Agentos-Claim-Role":     "",
				"X-Agentos-Foo":            "",
			},
			wantCheckURI: "/agents/web/runs?x=1", wantCheckMethod: http.MethodPost,
		},
		{
			name: "preflight, client-sent identity cleared", method: http.MethodOptions, path: "/agents",
			header: map[string]string{
				"Origin": "https://app.example.com", "X-Agentos-User-Id": "admin",
				"X-Agentos-Claim-Role": "admin", "X-Agentos-Foo": "forged", "Authorization": "Bearer client",
			},
			wantStatus: http.StatusOK,
			// A reply without Authorization: the client's passes unchanged.
			wantUpstream: map[string]string{
				"X-Agentos-Auth": "none", "X-Agentos-User-Id": "", "X-Agentos-Claim-Role": "", "X-Agentos-Foo": "",
				"Authorization": "Bearer client",
			},
			wantCheckURI: "/agents", wantCheckMethod: http.MethodOptions,
		},
		{
			name: "no credential", method: http.MethodGet, path: "/agents",
			wantStatus: http.StatusUnauthorized, wantDetail: "Authorization header missing",
			wantCheckURI: "/agents", wantCheckMethod: http.MethodGet,
		},
		{
			name: "insufficient scope", method: http.MethodDelete, path: "/config",
			header:     map[string]string{"Authorization": "Bearer t"},
			wantStatus: http.StatusForbidden, wantDetail: "Insufficient permissions. Required scope(s): config:read",
			wantCheckURI: "/config", wantCheckMethod: http.MethodDelete,
		},
		{
			name: "malformed path: auth_request's 500 becomes the 400", method: http.MethodGet, path: "/agents/a%2Fb",
			header:     map[string]string{"Authorization": "Bearer t"},
			wantStatus: http.StatusBadRequest, wantDetail: "Malformed request path",
			wantCheckURI: "/agents/a%2Fb", wantCheckMethod: http.MethodGet,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for len(checks) > 0 {
				<-checks
			}
			req, err := http.NewRequestWithContext(t.Context(), tt.method, base+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, resp.StatusCode, body, tt.wantStatus)
			}

			select {
			case c := <-checks:
				if got := c.Header.Get("X-Original-URI"); got != tt.wantCheckURI {
					t.Errorf("check X-Original-URI = %q, want %q", got, tt.wantCheckURI)
				}
				if got := c.Header.Get("X-Original-Method"); got != tt.wantCheckMethod {
					t.Errorf("check X-Original-Method = %q, want %q", got, tt.wantCheckMethod)
				}
				if got := c.Header.Get("X-Forwarded-Uri"); got != "" {
					t.Errorf("check X-Forwarded-Uri = %q, want none (client-sent)", got)
				}
				if c.BodyLen != 0 {
					t.Errorf("check received a %d-byte body, want none", c.BodyLen)
				}
				for h := range c.Header {
					if strings.HasPrefix(strings.ToLower(h), "x-agentos-") {
						t.Errorf("the check received the client's %s: nginx must clear every x-agentos-* header first", h)
					}
				}
			default:
				t.Fatal("agentos-authz was not asked")
			}

			if tt.wantStatus != http.StatusOK {
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("denial content-type = %q, want application/json", ct)
				}
				var got struct{ Detail string }
				if err := json.Unmarshal(body, &got); err != nil || got.Detail != tt.wantDetail {
					t.Errorf("denial body = %s, want {\"detail\": %q}", body, tt.wantDetail)
				}
				if tt.wantStatus == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != "Bearer" {
					t.Errorf("401 WWW-Authenticate = %q, want Bearer", resp.Header.Get("WWW-Authenticate"))
				}
				return
			}
			var up seen
			if err := json.Unmarshal(body, &up); err != nil {
				t.Fatalf("upstream reply %s: %v", body, err)
			}
			if up.Method != tt.method || up.URI != tt.path || up.BodyLen != len(tt.body) {
				t.Errorf("upstream got %s %s with %d bytes, want %s %s with %d", up.Method, up.URI, up.BodyLen, tt.method, tt.path, len(tt.body))
			}
			for h := range up.Header {
				if _, listed := tt.wantUpstream[h]; strings.HasPrefix(strings.ToLower(h), "x-agentos-") && !listed {
					t.Errorf("upstream received %s: %q, which agentos-authz did not set", h, up.Header.Values(h))
				}
			}
			for h, want := range tt.wantUpstream {
				got, present := up.Header.Get(h), len(up.Header.Values(h)) > 0
				if want == "" && present {
					t.Errorf("upstream header %s = %q, want it absent", h, got)
				}
				if want != "" && (got != want || len(up.Header.Values(h)) != 1) {
					t.Errorf("upstream header %s = %q, want exactly %q", h, up.Header.Values(h), want)
				}
			}
		})
	}
}
