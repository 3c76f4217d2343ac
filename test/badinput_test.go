package test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
	"github.com/agentos-authz/agentos-authz/test/harness"
)

const (
	malformedCheck = "Malformed check request"
	malformedPath  = "Malformed request path"
	headerMissing  = "Authorization header missing"
	invalidToken   = "Invalid token: "
)

// badCase is one hostile or broken request and the exact answer it must
// get. details lists the accepted exact details when the contract does
// not pin one; prefix is used for "Invalid token: <reason>".
type badCase struct {
	name string
	// One of: check (sent as is), or req + token (shaped by the harness;
	// "{token}" in a header is the minted token).
	check   *authv3.CheckRequest
	req     conformance.Request
	token   *conformance.TokenSpec
	edit    func(token string) string // applied to the minted token
	status  int
	details []string
	prefix  string
}

// TestBadInput sends garbage CheckRequests, huge headers and malformed
// tokens of every kind over real gRPC; each must get its exact status and
// message, the server must stay healthy, never panic and never echo a
// token or the secret.
func TestBadInput(t *testing.T) {
	h := startHS256(t)
	reader := tokenSpec("bad-input-user", "agents:read")
	validClaims, _ := json.Marshal(map[string]any{"sub": "u", "aud": "test-os", "exp": time.Now().Add(time.Hour).Unix(), "scopes": []string{"agents:read"}})
	b64 := base64.RawURLEncoding.EncodeToString
	get := func(path string, headers ...conformance.HeaderLine) conformance.Request {
		return conformance.Request{Method: "GET", Path: path, Headers: headers}
	}
	auth := func(v string) conformance.Request {
		return get("/agents", conformance.HeaderLine{Key: "authorization", Value: v})
	}
	signed := func(mut func(*conformance.TokenSpec)) *conformance.TokenSpec {
		s := tokenSpec("bad-input-user", "agents:read")
		mut(&s)
		return &s
	}
	many := func(n int, key func(i int) string) []conformance.HeaderLine {
		lines := make([]conformance.HeaderLine, n)
		for i := range lines {
			lines[i] = conformance.HeaderLine{Key: key(i), Value: fmt.Sprintf("value-%d", i)}
		}
		return lines
	}
	big := strings.Repeat("a", 64<<10)
	pad := strings.Repeat("p", 9<<10)

	cases := []badCase{
		// Garbage CheckRequests.
		{name: "no attributes", check: &authv3.CheckRequest{}, status: 400, details: []string{malformedCheck}},
		{name: "attributes without request", check: &authv3.CheckRequest{Attributes: &authv3.AttributeContext{}}, status: 400, details: []string{malformedCheck}},
		{name: "request without http", req: conformance.Request{Omit: "http"}, status: 400, details: []string{malformedCheck}},
		{
			name:   "empty http",
			check:  &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{}}}},
			status: 400, details: []string{malformedCheck, malformedPath},
		},
		// Paths.
		{name: "empty path", req: get(""), token: &reader, status: 400, details: []string{malformedPath, malformedCheck}},
		{name: "path without leading slash", req: get("agents"), token: &reader, status: 400, details: []string{malformedPath, malformedCheck}},
		{name: "path is only a query", req: get("?limit=1"), token: &reader, status: 400, details: []string{malformedPath, malformedCheck}},
		{name: "raw NUL in path", req: get("/agents\x00"), token: &reader, status: 400, details: []string{malformedPath}},
		{name: "encoded NUL in path", req: get("/agents%00"), token: &reader, status: 400, details: []string{malformedPath}},
		{name: "raw control character in path", req: get("/agents/\x1b[2J"), token: &reader, status: 400, details: []string{malformedPath}},
		{name: "invalid UTF-8 after decoding", req: get("/agents/%ff%fe"), token: &reader, status: 400, details: []string{malformedPath}},
		{name: "truncated escape", req: get("/agents/a%2"), token: &reader, status: 400, details: []string{malformedPath}},
		{name: "64 KiB path", req: get("/agents/" + big), token: &reader, status: 200},
		// Huge and numerous headers.
		{name: "64 KiB header value", req: get("/agents", conformance.HeaderLine{Key: "x-big", Value: big}), token: &reader, status: 200},
		{name: "64 KiB authorization header", req: auth("Bearer " + big), status: 401, prefix: invalidToken},
		{name: "64 KiB bare authorization header", req: auth(big), status: 401, prefix: invalidToken},
		{name: "64 KiB cookie", req: get("/agents", conformance.HeaderLine{Key: "cookie", Value: "access_token=" + big}), token: &reader, status: 200},
		{name: "10k headers", req: conformance.Request{Method: "GET", Path: "/agents", HeaderLines: many(10000, func(i int) string { return fmt.Sprintf("x-h-%d", i) })}, token: &reader, status: 200},
		{name: "10k raw header lines", req: conformance.Request{Method: "GET", Path: "/agents", RawHeaders: true, HeaderLines: many(10000, func(i int) string { return fmt.Sprintf("x-h-%d", i) })}, token: &reader, status: 200},
		{name: "10k repeats of one header", req: conformance.Request{Method: "GET", Path: "/agents", RawHeaders: true, HeaderLines: many(10000, func(int) string { return "x-agentos-user-id" })}, token: &reader, status: 200},
		// Credentials that are no credential.
		{name: "empty authorization", req: auth(""), status: 401, details: []string{headerMissing}},
		{name: "Bearer alone", req: auth("Bearer"), status: 401, details: []string{headerMissing}},
		{name: "Bearer and spaces", req: auth("Bearer    "), status: 401, details: []string{headerMissing}},
		// Malformed tokens.
		{name: "one part", req: auth("Bearer abcdef"), status: 401, prefix: invalidToken},
		{name: "one part bare", req: auth("abcdef"), status: 401, prefix: invalidToken},
		{name: "two parts", req: auth("Bearer " + b64([]byte(`{"alg":"HS256"}`)) + "." + b64(validClaims)), status: 401, prefix: invalidToken},
		{name: "four parts", req: auth("Bearer a.b.c.d"), status: 401, prefix: invalidToken},
		{name: "five parts (JWE shape)", req: auth("Bearer a.b.c.d.e"), status: 401, prefix: invalidToken},
		{name: "only dots", req: auth("Bearer .."), status: 401, prefix: invalidToken},
		{name: "bad base64", req: auth("Bearer @@@.###.$$$"), status: 401, prefix: invalidToken},
		{name: "padded base64", req: auth("Bearer " + base64.URLEncoding.EncodeToString([]byte(`{"alg":"HS256"}`)) + "." + base64.URLEncoding.EncodeToString(validClaims) + ".c2ln"), status: 401, prefix: invalidToken},
		{name: "header not JSON", req: auth("Bearer " + b64([]byte("not-json")) + "." + b64(validClaims) + ".c2ln"), status: 401, prefix: invalidToken},
		{name: "header a JSON array", req: auth("Bearer " + b64([]byte(`["HS256"]`)) + "." + b64(validClaims) + ".c2ln"), status: 401, prefix: invalidToken},
		{name: "payload not JSON, signed", req: get("/agents"), token: signed(func(s *conformance.TokenSpec) { s.PayloadRaw = ptr("not json") }), status: 401, prefix: invalidToken},
		{name: "payload a JSON array, signed", req: get("/agents"), token: signed(func(s *conformance.TokenSpec) { s.PayloadRaw = ptr(`["agents:read"]`) }), status: 401, prefix: invalidToken},
		{name: "payload null, signed", req: get("/agents"), token: signed(func(s *conformance.TokenSpec) { s.PayloadRaw = ptr("null") }), status: 401, prefix: invalidToken},
		{name: "alg none", req: get("/agents"), token: signed(func(s *conformance.TokenSpec) { s.Alg = "none" }), status: 401, prefix: invalidToken},
		{name: "alg None", req: get("/agents"), token: signed(func(s *conformance.TokenSpec) { s.Alg = "None" }), status: 401, prefix: invalidToken},
		{name: "alg NONE", req: get("/agents"), token: signed(func(s *conformance.TokenSpec) { s.Alg = "NONE" }), status: 401, prefix: invalidToken},
		{name: "alg unknown", req: get("/agents"), token: signed(func(s *conformance.TokenSpec) {
			s.Header = map[string]json.RawMessage{"alg": json.RawMessage(`"XS256"`)}
		}), status: 401, prefix: invalidToken},
		{name: "alg missing", req: get("/agents"), token: signed(func(s *conformance.TokenSpec) { s.Header = map[string]json.RawMessage{"alg": json.RawMessage(`null`)} }), status: 401, prefix: invalidToken},
		{name: "alg not a string", req: get("/agents"), token: signed(func(s *conformance.TokenSpec) { s.Header = map[string]json.RawMessage{"alg": json.RawMessage(`256`)} }), status: 401, prefix: invalidToken},
		{name: "signature altered", req: get("/agents"), token: signed(func(s *conformance.TokenSpec) { s.Tamper = &conformance.Tamper{Signature: true} }), status: 401, prefix: invalidToken},
		{name: "signature removed", req: get("/agents"), token: &reader, edit: func(tok string) string { return tok[:strings.LastIndex(tok, ".")+1] }, status: 401, prefix: invalidToken},
		{name: "signature not base64", req: get("/agents"), token: &reader, edit: func(tok string) string { return tok[:strings.LastIndex(tok, ".")+1] + "!!!!" }, status: 401, prefix: invalidToken},
		{name: "trailing garbage", req: get("/agents"), token: &reader, edit: func(tok string) string { return tok + ".x" }, status: 401, prefix: invalidToken},
		{name: "wrong secret", req: get("/agents"), token: signed(func(s *conformance.TokenSpec) { s.Secret = ptr("not-the-secret") }), status: 401, prefix: invalidToken},
		{name: "9 KiB token", req: get("/agents"), token: signed(func(s *conformance.TokenSpec) {
			var c map[string]any
			_ = json.Unmarshal(s.Claims, &c)
			c["pad"] = pad
			s.Claims, _ = json.Marshal(c)
		}), status: 401, prefix: invalidToken},
		{name: "NUL inside the token", req: auth("Bearer abc\x00def.ghi.jkl"), status: 401, prefix: invalidToken},
		{name: "two tokens", req: auth("Bearer {token} {token}"), token: &reader, status: 401, prefix: invalidToken},
		{name: "two authorization lines", req: conformance.Request{Method: "GET", Path: "/agents", HeaderLines: []conformance.HeaderLine{{Key: "authorization", Value: "Bearer {token}"}, {Key: "authorization", Value: "Bearer {token}"}}}, token: &reader, status: 401, prefix: invalidToken},
		{name: "Basic credentials", req: auth("Basic dXNlcjpwYXNzd29yZA=="), status: 401, prefix: invalidToken},
		{
			name: "non-UTF-8 raw authorization",
			req: conformance.Request{Method: "GET", Path: "/agents", RawHeaders: true,
				HeaderLines: []conformance.HeaderLine{{Key: "authorization", Value: "Bearer \xff\xfe\xfd.\xc0\xaf.\x80"}}},
			status: 401, prefix: invalidToken,
		},
	}

	var sent []string // minted tokens, which must never reach the output
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, tok := buildBad(t, h, c)
			if tok != "" {
				sent = append(sent, tok)
			}
			ctx, cancel := context.WithTimeout(t.Context(), checkTimeout)
			defer cancel()
			resp, err := h.srv.Check(ctx, b.Check)
			if err != nil {
				t.Fatalf("%s: Check RPC failed: %v, want %d", b.Describe(), err, c.status)
			}
			want := conformance.Expect{Status: conformance.StatusSet{c.status}}
			if c.prefix != "" {
				want.DetailPrefix = ptr(c.prefix)
			}
			if len(c.details) == 1 {
				want.Detail = ptr(c.details[0])
			}
			o := harness.Interpret(b, resp)
			for _, p := range harness.Compare(want, b, o) {
				t.Error(p)
			}
			if len(c.details) > 1 && o.Status == c.status && !slices.Contains(c.details, o.Detail) {
				t.Errorf("%s = %v, want one of %q", b.Describe(), o, c.details)
			}
			if tok != "" && len(tok) >= 12 && strings.Contains(o.Detail, tok) {
				t.Errorf("%s: the detail echoes the token", b.Describe())
			}
		})
	}

	// Still healthy, still deciding, and nothing leaked.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if h.srv.Exited() {
		t.Fatalf("the server exited during the bad-input tests\n%s", h.srv.Tail(60))
	}
	if err := harness.WaitServing(ctx, h.srv.Conn()); err != nil {
		t.Fatalf("health after the bad input: %v\n%s", err, h.srv.Tail(60))
	}
	b := h.request(t, "/agents", reader)
	resp, err := h.srv.Check(ctx, b.Check)
	if err != nil {
		t.Fatalf("%s after the bad input: %v", b.Describe(), err)
	}
	for _, p := range harness.Compare(conformance.Expect{Status: conformance.StatusSet{200}}, b, harness.Interpret(b, resp)) {
		t.Errorf("after the bad input: %s", p)
	}
	code, err := h.srv.Stop(harness.DefaultStopTimeout)
	if err != nil || code != 0 {
		t.Errorf("after SIGTERM: exit %d, %v, want exit 0\n%s", code, err, h.srv.Tail(40))
	}
	noPanics(t, h.srv)
	out := h.srv.Output()
	if strings.Contains(out, h.secret) {
		t.Error("the server's output holds the HMAC secret")
	}
	for _, tok := range sent {
		if sig := tok[strings.LastIndex(tok, ".")+1:]; len(sig) >= 16 && strings.Contains(out, sig) {
			t.Errorf("the server's output holds a token's signature")
		}
	}
}

// buildBad shapes a badCase into a request; it returns the minted token
// ("" when none).
func buildBad(t *testing.T, h hsServer, c badCase) (harness.Built, string) {
	t.Helper()
	if c.check != nil {
		return harness.Built{Check: c.check, Method: "(garbage)", Path: c.name}, ""
	}
	tokens := map[string]string{}
	var tok string
	if c.token != nil {
		var err error
		tok, err = h.minter.Mint(*c.token)
		if err != nil {
			t.Fatal(err)
		}
		if c.edit != nil {
			tok = c.edit(tok)
		}
		tokens["token"] = tok
	}
	b, err := harness.BuildRequest(c.req, tokens)
	if err != nil {
		t.Fatal(err)
	}
	if c.req.RawHeaders {
		// BuildRequest keeps raw values as bytes; make sure no line was
		// lost on the way.
		if got := len(b.Check.GetAttributes().GetRequest().GetHttp().GetHeaderMap().GetHeaders()); got < len(c.req.HeaderLines) {
			t.Fatalf("header_map has %d lines, want at least %d", got, len(c.req.HeaderLines))
		}
	}
	return b, tok
}
