package test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"google.golang.org/grpc/codes"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
	"github.com/agentos-authz/agentos-authz/test/harness"
)

// identityServer is the binary with upstream.identity_token on
// (docs/CONTRACT.md §9), accepting callers' tokens from three sources: a
// JWKS URL (served here), a static RS256 public key and an HS256 secret.
type identityServer struct {
	srv      *harness.Server
	httpAddr string
	idp      signer // the JWKS URL's key (RS256, kid "idp-1")
	static   *rsa.PrivateKey
	secret   string
}

func startIdentity(t *testing.T) identityServer {
	t.Helper()
	bin := binary(t)
	dir := t.TempDir()
	s := identityServer{idp: newSigner(t, "idp-1"), secret: "identity-test-secret-0123456789abcdef"}
	var err error
	if s.static, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	jwks := &switchableJWKS{}
	jwks.serve(http.StatusOK, jwksOf(t, s.idp))
	idp := httptest.NewServer(jwks)
	t.Cleanup(idp.Close)

	pubDER, err := x509.MarshalPKIXPublicKey(&s.static.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	// The identity-token signing key: RS256, the recommended type.
	signing, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(signing)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "upstream.key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{
		"os_id": "test-os",
		"jwt": map[string]any{
			"algorithms":        []string{"RS256", "HS256"},
			"jwks_url":          idp.URL + "/jwks.json",
			"verification_keys": []string{s.secret, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))},
		},
		"upstream": map[string]any{"identity_token": true, "signing_key_file": keyFile},
	}
	text, err := json.Marshal(cfg) // JSON is YAML
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, text, 0o600); err != nil {
		t.Fatal(err)
	}
	s.srv, err = harness.Start(t.Context(), harness.Options{Binary: bin, ConfigPath: path, Args: []string{"--http-addr", "127.0.0.1:0"}})
	if err != nil {
		t.Fatalf("the server did not start: %v", err)
	}
	t.Cleanup(s.srv.Kill)
	s.httpAddr = listeningAddr(t, s.srv, "http_addr")
	return s
}

// callerToken signs a caller token for sub with alg from one of the
// server's three sources, expiring at exp.
func (s identityServer) callerToken(t *testing.T, source, sub string, exp time.Time) string {
	t.Helper()
	tok, err := jwt.NewBuilder().Subject(sub).Audience([]string{"test-os"}).Claim("session_id", "sess-"+sub).
		Claim("scopes", []string{"agents:read", "agents:web:run"}).IssuedAt(time.Now()).Expiration(exp).Build()
	if err != nil {
		t.Fatal(err)
	}
	var opt jwt.SignOption
	switch source {
	case "jwks-url":
		hdr := jws.NewHeaders()
		_ = hdr.Set(jws.KeyIDKey, s.idp.kid)
		opt = jwt.WithKey(jwa.RS256, s.idp.key, jws.WithProtectedHeaders(hdr))
	case "static-rs256":
		opt = jwt.WithKey(jwa.RS256, s.static)
	case "hs256":
		opt = jwt.WithKey(jwa.HS256, []byte(s.secret))
	default:
		t.Fatalf("no source %q", source)
	}
	signed, err := jwt.Sign(tok, opt)
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

// publishedSet fetches /.well-known/jwks.json from the admin listener.
func publishedSet(t *testing.T, admin string) (jwk.Set, *http.Response) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	res, err := c.Get("http://" + admin + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, res
	}
	set, err := jwk.Parse(body)
	if err != nil {
		t.Fatalf("/.well-known/jwks.json is not a JWK Set: %v\n%s", err, body)
	}
	return set, res
}

// checkIssued verifies the upstream's authorization value as AgentOS
// would with the published set as JWT_JWKS_FILE, and checks the claims of
// docs/CONTRACT.md §9. It returns the token's kid.
func checkIssued(t *testing.T, set jwk.Set, value, caller, sub string, callerExp time.Time) string {
	t.Helper()
	tok, ok := strings.CutPrefix(value, "Bearer ")
	if !ok || tok == caller || strings.Contains(value, caller) {
		t.Fatalf("the upstream's authorization is not a re-issued token (holds the caller's: %v)", strings.Contains(value, caller))
	}
	parsed, err := jwt.Parse([]byte(tok), jwt.WithKeySet(set), jwt.WithAudience("test-os"), jwt.WithIssuer("agentos-authz"))
	if err != nil {
		t.Fatalf("the re-issued token does not verify against /.well-known/jwks.json: %v", err)
	}
	msg, err := jws.Parse([]byte(tok))
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(msg.Payload(), &claims); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(claims))
	for k := range claims {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"aud", "exp", "iat", "iss", "jti", "scopes", "session_id", "sub"}; !slices.Equal(keys, want) {
		t.Errorf("claims %v, want exactly %v", keys, want)
	}
	if parsed.Subject() != sub || claims["session_id"] != "sess-"+sub {
		t.Errorf("sub %q session_id %v, want the caller's", parsed.Subject(), claims["session_id"])
	}
	if got, _ := json.Marshal(claims["scopes"]); string(got) != `["agents:read","agents:web:run"]` {
		t.Errorf("scopes %s", got)
	}
	iat, exp := parsed.IssuedAt(), parsed.Expiration()
	if exp.After(callerExp) || exp.After(iat.Add(time.Minute)) {
		t.Errorf("exp %v: later than the caller's %v or iat + 60s", exp, callerExp)
	}
	if alg := msg.Signatures()[0].ProtectedHeaders().Algorithm(); alg != jwa.RS256 {
		t.Errorf("alg %s, want RS256", alg)
	}
	return msg.Signatures()[0].ProtectedHeaders().KeyID()
}

// TestIdentityTokens: against the real binary, callers with tokens from a
// JWKS URL, a static RS256 key and an HS256 secret all reach the upstream
// with a token this service signed with one stable key, verifiable with
// the JWK Set the admin listener publishes; the caller's authorization is
// replaced over gRPC and in HTTP mode, never passed beside it.
func TestIdentityTokens(t *testing.T) {
	s := startIdentity(t)
	set, res := publishedSet(t, s.srv.AdminAddr)
	if set == nil {
		t.Fatalf("/.well-known/jwks.json = %d, want 200", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" || set.Len() != 1 {
		t.Errorf("published set: content-type %q, %d keys; want application/json, 1", ct, set.Len())
	}
	k, _ := set.Key(0)
	kids := map[string]bool{}
	for _, source := range []string{"jwks-url", "static-rs256", "hs256"} {
		t.Run(source, func(t *testing.T) {
			sub := "user-" + source
			exp := time.Now().Add(30 * time.Second).Truncate(time.Second)
			caller := s.callerToken(t, source, sub, exp)

			// gRPC: the OK response's header options applied as Envoy does.
			b, err := harness.BuildRequest(conformance.Request{Method: "GET", Path: "/agents"}, map[string]string{"token": caller})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := s.srv.Check(t.Context(), b.Check)
			if err != nil || codes.Code(resp.GetStatus().GetCode()) != codes.OK {
				t.Fatalf("Check = %v, %v; want OK", resp.GetStatus(), err)
			}
			up, err := harness.ApplyOK(b.Upstream, resp.GetOkResponse())
			if err != nil {
				t.Fatal(err)
			}
			auth := up.Values("authorization")
			if len(auth) != 1 {
				t.Fatalf("the upstream receives %d authorization lines, want 1 (replaced, not appended)", len(auth))
			}
			kids[checkIssued(t, set, auth[0], caller, sub, exp)] = true
			if _, in := resp.GetDynamicMetadata().GetFields()["authorization"]; in {
				t.Error("the identity token is in the dynamic metadata")
			}

			// HTTP mode (nginx auth_request shape).
			req, err := http.NewRequestWithContext(t.Context(), "GET", "http://"+s.httpAddr+"/auth", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Original-Uri", "/agents")
			req.Header.Set("X-Original-Method", "GET")
			req.Header.Set("Authorization", "Bearer "+caller)
			hres, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = hres.Body.Close()
			if hres.StatusCode != http.StatusOK || len(hres.Header.Values("Authorization")) != 1 {
				t.Fatalf("HTTP check = %d with %d Authorization headers, want 200 with 1", hres.StatusCode, len(hres.Header.Values("Authorization")))
			}
			kids[checkIssued(t, set, hres.Header.Get("Authorization"), caller, sub, exp)] = true
		})
	}
	if len(kids) != 1 || !kids[k.KeyID()] {
		t.Errorf("tokens signed under kids %v, want only the published %q", kids, k.KeyID())
	}
	if out := s.srv.Output(); strings.Contains(out, "BEGIN") || strings.Contains(out, "eyJ") {
		t.Error("the log holds key material or a token")
	}
	noPanics(t, s.srv)
}

// TestJWKSEndpointOff: without identity tokens there is no key to publish.
func TestJWKSEndpointOff(t *testing.T) {
	h := startHS256(t)
	if set, res := publishedSet(t, h.srv.AdminAddr); set != nil || res.StatusCode != http.StatusNotFound {
		t.Errorf("/.well-known/jwks.json without identity tokens = %d, want 404", res.StatusCode)
	}
}

// TestNginxIdentityToken: through the shipped nginx configuration, the
// upstream receives the re-issued token and never the caller's; a
// preflight, which gets no identity token, passes the client's header.
func TestNginxIdentityToken(t *testing.T) {
	bin := nginxBinary(t)
	s := startIdentity(t)
	set, _ := publishedSet(t, s.srv.AdminAddr)
	if set == nil {
		t.Fatal("no published JWK Set")
	}
	up := newEchoUpstream(t)
	ngx := startNginx(t, bin, func(listen string) string {
		return nginxConf(t, listen, s.httpAddr, strings.TrimPrefix(up.URL, "http://"))
	})
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	caller := s.callerToken(t, "hs256", "alice", exp)
	for _, tc := range []struct {
		method string
		issued bool
	}{{method: "GET", issued: true}, {method: "OPTIONS"}} {
		t.Run(tc.method, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tc.method, "http://"+ngx.addr+"/agents", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+caller)
			req.Header.Set("Origin", "https://app.example.com")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(res.Body)
			_ = res.Body.Close()
			if err != nil || res.StatusCode != http.StatusOK {
				t.Fatalf("%s /agents through nginx = %d %s (%v)\n%s", tc.method, res.StatusCode, body, err, ngx.logs())
			}
			var got echoed
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("upstream reply %s: %v", body, err)
			}
			auth := got.Header.Values("Authorization")
			if len(auth) != 1 {
				t.Fatalf("the upstream received %d Authorization headers, want 1", len(auth))
			}
			if !tc.issued {
				if auth[0] != "Bearer "+caller {
					t.Error("a preflight's Authorization did not pass unchanged")
				}
				return
			}
			checkIssued(t, set, auth[0], caller, "alice", exp)
		})
	}
	if n := up.count(); n != 2 {
		t.Errorf("the upstream saw %d requests, want 2", n)
	}
}
