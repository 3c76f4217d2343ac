package main

import (
	"strings"
	"testing"
)

// outcome is what a check run printed that every mode prints alike: the
// status line and the detail line ("" when none).
func outcome(out string) (status, detail string) {
	for _, l := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		switch k {
		case "status":
			status = strings.TrimSpace(v)
		case "detail":
			detail = strings.TrimSpace(v)
		}
	}
	return status, detail
}

// TestCheckPathsAgree: check decides a request the same way offline
// (--config), through the policy API (--server admin) and through the
// ext_authz Check a served request takes (--server gRPC), because all
// three build it with envoy.NewCheckRequest and decide what
// envoy.FromCheckRequest makes of it. The cases are those a hand-built
// request got wrong: the method's case (only the exact OPTIONS is a
// preflight, docs/CONTRACT.md §5 step 3), the cookie credential, the query
// string.
func TestCheckPathsAgree(t *testing.T) {
	h := newHarness(t)
	prefix, pub := keyPair(t, h)
	cfg := keyConfig(pub, "ES256")
	// docs/CONTRACT.md §5 step 4: with token_source cookie only the
	// access_token cookie is a credential.
	cfg["jwt"].(map[string]any)["token_source"] = "cookie"
	cfgPath := writeConfig(t, cfg)
	reader := mintWith(t, h, prefix, "agents:read")

	r := startServe(t, h, nil, 0, "--config", cfgPath)
	r.waitServing(t)
	modes := []struct{ name, flag, value string }{
		{"offline", "--config", cfgPath},
		{"policy API", "--server", r.adminAddr},
		{"ext_authz Check", "--server", r.grpcAddr},
	}
	for _, tc := range []struct {
		name, method, path string
		token              string
		headers            []string
		wantStatus         string
		wantDetail         string
	}{
		{name: "GET with a token in the cookie", method: "GET", path: "/agents", token: reader, wantStatus: "200"},
		{name: "lower-case get routes as GET", method: "get", path: "/agents", token: reader, wantStatus: "200"},
		{name: "OPTIONS is a preflight", method: "OPTIONS", path: "/agents/web/runs", wantStatus: "200"},
		{name: "options is no preflight", method: "options", path: "/agents/web/runs", wantStatus: "401",
			wantDetail: "JWT cookie 'access_token' missing"},
		{name: "the client's own cookie line", method: "GET", path: "/agents",
			headers: []string{"cookie: theme=dark; access_token=" + reader}, wantStatus: "200"},
		{name: "an authorization header is no cookie", method: "GET", path: "/agents",
			headers: []string{"authorization: Bearer " + reader}, wantStatus: "401", wantDetail: "JWT cookie 'access_token' missing"},
		{name: "query string on a listing", method: "GET", path: "/agents?limit=5&q=a%20b", token: reader, wantStatus: "200"},
		{name: "query string on a route the token lacks", method: "POST", path: "/agents/web/runs?stream=true", token: reader,
			wantStatus: "403", wantDetail: "Insufficient permissions. Required scope(s): agents:run"},
		{name: "ambiguous path before the query", method: "GET", path: "/health/../agents?x=1", token: reader,
			wantStatus: "400", wantDetail: "Malformed request path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range modes {
				args := []string{"check", m.flag, m.value, "--method", tc.method, "--path", tc.path}
				if tc.token != "" {
					args = append(args, "--token", tc.token)
				}
				for _, hd := range tc.headers {
					args = append(args, "--header", hd)
				}
				hc := newHarness(t)
				code := hc.run(args...)
				out := hc.stdout.String()
				wantCode := exitDenied
				if tc.wantStatus == "200" {
					wantCode = exitOK
				}
				status, detail := outcome(out)
				if code != wantCode || status != tc.wantStatus || detail != tc.wantDetail {
					t.Errorf("check %s %s %s (%s) = exit %d, status %q, detail %q; want exit %d, status %q, detail %q\nstdout:\n%sstderr: %s",
						m.name, tc.method, tc.path, tc.name, code, status, detail, wantCode, tc.wantStatus, tc.wantDetail, out, hc.stderr)
				}
				if strings.Contains(out+hc.stderr.String(), reader) {
					t.Errorf("check %s (%s) printed the token", m.name, tc.name)
				}
			}
		})
	}
}
