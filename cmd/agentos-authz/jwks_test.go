package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/agentos-authz/agentos-authz/authz"
)

// fixedJWKS is a jwksSource with a set (nil: identity tokens off).
type fixedJWKS []byte

func (f fixedJWKS) UpstreamJWKS() []byte { return f }

func TestJWKSHandler(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := &jwksHandler{next: next}
	get := func(method, path string) (*http.Response, string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
		res := w.Result()
		body, _ := io.ReadAll(res.Body)
		return res, string(body)
	}
	if res, _ := get("GET", jwksPath); res.StatusCode != http.StatusNotFound {
		t.Errorf("before the authorizer is built: %d, want 404", res.StatusCode)
	}
	h.set(fixedJWKS(nil))
	if res, _ := get("GET", jwksPath); res.StatusCode != http.StatusNotFound {
		t.Errorf("identity tokens off: %d, want 404", res.StatusCode)
	}
	const set = `{"keys":[]}` + "\n"
	h.set(fixedJWKS(set))
	res, body := get("GET", jwksPath)
	if res.StatusCode != http.StatusOK || body != set || res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("GET = %d %q %q", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	if res, body := get("HEAD", jwksPath); res.StatusCode != http.StatusOK || body != "" || res.Header.Get("Content-Length") != "12" {
		t.Errorf("HEAD = %d, body %q, length %q", res.StatusCode, body, res.Header.Get("Content-Length"))
	}
	if res, _ := get("POST", jwksPath); res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST = %d, Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
	if res, _ := get("GET", "/healthz"); res.StatusCode != http.StatusTeapot {
		t.Errorf("other paths are not passed on: %d", res.StatusCode)
	}
}

// TestWatchedFilesSigningKey: the identity-token signing key is one of the
// files whose change reloads the configuration (docs/CONTRACT.md §9).
func TestWatchedFilesSigningKey(t *testing.T) {
	cfg := config{Config: &authz.Config{}}
	cfg.JWT.JWKSFile = "/etc/authz/jwks.json"
	cfg.Upstream.SigningKeyFile = "/etc/authz/upstream.key.pem"
	got := watchedFiles("/etc/authz/config.yaml", &cfg)
	want := []string{"/etc/authz/config.yaml", "/etc/authz/jwks.json", "/etc/authz/upstream.key.pem"}
	if !slices.Equal(got, want) {
		t.Errorf("watchedFiles = %v, want %v", got, want)
	}
}
