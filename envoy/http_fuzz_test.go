package envoy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/agentos-authz/agentos-authz/authz"
)

// contractStatuses are the HTTP statuses of docs/CONTRACT.md §5's table, plus 200.
var contractStatuses = map[int]bool{200: true, 400: true, 401: true, 403: true, 429: true, 503: true}

// FuzzHTTPCheck: any HTTP/1.1 request a proxy (or anyone reaching the
// port) can send to the HTTP ext_authz service is parsed and decided
// without a panic; the reply is a decision with a contract status (200
// with no body, or the denial's JSON {"detail": ...}); the bearer token
// never appears in the detail or any reply header.
func FuzzHTTPCheck(f *testing.F) {
	cfg, err := authz.Load([]byte("os_id: test-os\ncors_allowed_origins: [https://app.example.com]\n"+
		"jwt:\n  algorithms: [HS256]\n  verification_keys: [\""+httpSecret+"\"]\n"), nil, authz.LoadOptions{})
	if err != nil {
		f.Fatalf("authz.Load: %v", err)
	}
	a, err := authz.New(cfg, authz.Options{Logger: zap.NewNop()})
	if err != nil {
		f.Fatalf("authz.New: %v", err)
	}
	h := NewHTTPHandler(a, HTTPOptions{})
	tok := benchToken(f, []string{"agents:read"})
	for _, seed := range []string{
		// nginx auth_request
		"GET /_authz HTTP/1.1\r\nHost: authz\r\nX-Original-URI: /agents?limit=5\r\nX-Original-Method: GET\r\nAuthorization: Bearer " + tok + "\r\n\r\n",
		// Traefik ForwardAuth
		"GET / HTTP/1.1\r\nHost: authz\r\nX-Forwarded-Uri: /agents/web/runs\r\nX-Forwarded-Method: POST\r\nAuthorization: Bearer " + tok + "\r\nOrigin: https://app.example.com\r\n\r\n",
		// Envoy's HTTP service mode: the request is the check
		"GET /agents HTTP/1.1\r\nHost: app\r\nCookie: access_token=" + tok + "\r\nAuthorization: " + tok + "\r\n\r\n",
		"OPTIONS /agents HTTP/1.1\r\nHost: app\r\nOrigin: https://app.example.com\r\nX-Agentos-User-Id: spoof\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: app\r\n\r\n",
		"GET http://app.example.com/agents HTTP/1.1\r\nHost: app\r\nAuthorization: Bearer " + tok + "\r\n\r\n",
		"CONNECT app.example.com:443 HTTP/1.1\r\nHost: app.example.com:443\r\n\r\n",
		"GET /agents/a%2Fb HTTP/1.1\r\nHost: app\r\nX-Original-URI: /agents\r\nX-Original-URI: /config\r\n\r\n",
		"GET /health HTTP/1.1\r\nHost: app\r\nX-Forwarded-Uri: /health\r\nX-Original-URI: /config\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return // net/http refuses it before any handler runs
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		res := w.Result()
		body := w.Body.String()
		if !contractStatuses[res.StatusCode] {
			t.Fatalf("status %d is not a decision of the contract (body %q)", res.StatusCode, body)
		}
		if res.StatusCode == http.StatusOK {
			if body != "" {
				t.Fatalf("an allow has a body: %q", body)
			}
		} else {
			var d struct {
				Detail *string `json:"detail"`
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("denial %d content-type %q", res.StatusCode, ct)
			}
			if json.Unmarshal([]byte(body), &d) != nil || d.Detail == nil {
				t.Fatalf("denial %d body %q is not {\"detail\": ...}", res.StatusCode, body)
			}
		}
		// The credential never comes back: not in the detail, not in a
		// header (an Origin the client sent is echoed on errors: a token
		// placed there is its own doing).
		cred := strings.TrimSpace(req.Header.Get("Authorization"))
		if len(cred) > 7 && strings.EqualFold(cred[:7], "bearer ") {
			cred = strings.TrimSpace(cred[7:])
		}
		if len(cred) < 8 || strings.Contains(req.Header.Get("Origin"), cred) {
			return
		}
		if strings.Contains(body, cred) {
			t.Fatalf("the reply body carries the token: %q", body)
		}
		for k, vs := range res.Header {
			for _, v := range vs {
				if strings.Contains(v, cred) {
					t.Fatalf("reply header %s carries the token: %q", k, v)
				}
			}
		}
	})
}
