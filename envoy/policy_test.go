package envoy

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/agentos-authz/agentos-authz/authz"
	authzv1 "github.com/agentos-authz/agentos-authz/proto/agentos/authz/v1"
	"github.com/agentos-authz/agentos-authz/proto/envoyfixtures"
)

// TestExplainAgreesWithCheckOnFixtures: for every Envoy fixture, with the
// key, without it and with a wrong one, Explain (given the fixture's
// method, path and headers) decides as Check does.
func TestExplainAgreesWithCheckOnFixtures(t *testing.T) {
	a := newKeyAuthorizer(t)
	cfg, err := authz.Load([]byte("security_key: "+securityKey+"\n"), nil, authz.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ps := NewPolicyServer()
	ps.Set(&PolicyState{Authorizer: a, Config: cfg})
	check := NewServer(a)
	compared := 0
	for _, name := range envoyfixtures.Names() {
		for _, tok := range []string{securityKey, "", "wrong-key"} {
			cr, err := envoyfixtures.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			envoyfixtures.SetToken(cr, tok)
			h := cr.GetAttributes().GetRequest().GetHttp()
			headers := map[string]string{}
			if lines := h.GetHeaderMap().GetHeaders(); len(lines) > 0 {
				for k, v := range joinHeaderLines(t.Context(), lines) {
					headers[k] = v
				}
			} else {
				for k, v := range h.GetHeaders() {
					headers[k] = v
				}
			}
			resp, err := check.Check(t.Context(), cr)
			if err != nil {
				t.Fatal(err)
			}
			ex, err := ps.Explain(t.Context(), &authzv1.ExplainRequest{Method: h.GetMethod(), Path: h.GetPath(), Headers: headers})
			if err != nil {
				t.Fatalf("%s: Explain: %v", name, err)
			}
			st, detail := 200, ""
			if dr := resp.GetDeniedResponse(); dr != nil {
				st = int(dr.GetStatus().GetCode())
				var body struct{ Detail string }
				if err := json.Unmarshal([]byte(dr.GetBody()), &body); err != nil {
					t.Fatalf("%s: denied body %q: %v", name, dr.GetBody(), err)
				}
				detail = body.Detail
			}
			if int(ex.GetStatus()) != st || ex.GetDetail() != detail {
				t.Errorf("%s (token %q): Explain = %d %q, Check = %d %q", name, tok, ex.GetStatus(), ex.GetDetail(), st, detail)
			}
			compared++
		}
	}
	if compared == 0 {
		t.Fatal("no fixture compared")
	}
}

func TestPolicyServerUnavailableUntilSet(t *testing.T) {
	ps := NewPolicyServer()
	if _, err := ps.Explain(t.Context(), &authzv1.ExplainRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("Explain before Set = %v, want Unavailable", err)
	}
	if _, err := ps.ListRoutes(t.Context(), &authzv1.ListRoutesRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("ListRoutes before Set = %v, want Unavailable", err)
	}
	if _, err := ps.GetConfig(t.Context(), &authzv1.GetConfigRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("GetConfig before Set = %v, want Unavailable", err)
	}
}

func TestExplainCheckRequest(t *testing.T) {
	cfg, err := authz.Load([]byte("security_key: k\njwt: {header: X-Auth}\n"), nil, authz.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cr := ExplainCheckRequest(cfg, &authzv1.ExplainRequest{Headers: map[string]string{"Origin": "https://a", "Host": "api.example"}, Token: "tok"})
	h := cr.GetAttributes().GetRequest().GetHttp()
	if h.GetMethod() != "GET" || h.GetPath() != "/" || h.GetHost() != "api.example" {
		t.Errorf("defaults: method %q path %q host %q", h.GetMethod(), h.GetPath(), h.GetHost())
	}
	want := map[string]string{
		":method": "GET", ":path": "/", ":authority": "api.example", ":scheme": "http",
		"origin": "https://a", "x-auth": "Bearer tok", "cookie": "access_token=tok",
	}
	for k, v := range want {
		if h.GetHeaders()[k] != v {
			t.Errorf("header %s = %q, want %q (all: %q)", k, h.GetHeaders()[k], v, h.GetHeaders())
		}
	}
	// Envoy's codec turns an HTTP/1 Host line into :authority
	// (proto/envoy-fixtures/ENVOY-NOTES.md §1): no "host" header.
	if v, ok := h.GetHeaders()["host"]; ok {
		t.Errorf("header host = %q, want it folded into :authority", v)
	}
}

func TestRedactedConfig(t *testing.T) {
	const secret = "sk-0123456789-very-secret"
	cfg, err := authz.Load([]byte(`
security_key: `+secret+`
security_key_migration: true
os_id: my-os
jwt:
  verification_keys: ["hmac-secret-0123456789abcdef0123456789"]
  algorithms: [HS256]
  jwks_url: https://idp.example/jwks.json?api_key=zzz
`), nil, authz.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, redacted, err := RedactedConfig(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(s.AsMap())
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{secret, "hmac-secret", "zzz"} {
		if strings.Contains(string(js), leak) {
			t.Errorf("redacted configuration holds %q: %s", leak, js)
		}
	}
	if !slices.Equal(redacted, []string{"jwt.verification_keys", "security_key"}) {
		t.Errorf("redacted fields = %q", redacted)
	}
	m := s.AsMap()
	jwt, _ := m["jwt"].(map[string]any)
	if m["os_id"] != "my-os" || m["security_key_migration"] != true || jwt["token_source"] != "" ||
		!strings.HasPrefix(jwt["jwks_url"].(string), "https://") || !strings.Contains(jwt["jwks_url"].(string), "idp.example/jwks.json") {
		t.Errorf("redaction removed what is no secret: %s", js)
	}
}
