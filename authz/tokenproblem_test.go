package authz

import (
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
)

// TestTokenProblem: a refused token's decision names its problem from the
// closed set (the decision line's token_problem), never by the detail's text.
func TestTokenProblem(t *testing.T) {
	a := newTestAuthorizer(t, hsConfig("  issuer: https://idp.test\n  verify_audience: true\n"), nil, nil)
	good := claims{"sub": "u1", "aud": "test-os", "iss": "https://idp.test"}
	with := func(k string, v any) claims {
		c := claims{}
		for kk, vv := range good {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	tok := mintHS(t, good)
	for _, tt := range []struct {
		name  string
		token string
		want  TokenProblem
	}{
		{name: "bad signature", token: tok[:strings.LastIndexByte(tok, '.')+1] + "AAAA" + tok[strings.LastIndexByte(tok, '.')+5:], want: TokenBadSignature},
		{name: "malformed", token: "not.a-token", want: TokenMalformed},
		{name: "wrong algorithm", token: mint(t, jwa.HS384, []byte(hsKey+hsKey), good), want: TokenAlgorithm},
		{name: "issuer", token: mintHS(t, with("iss", "https://other.test")), want: TokenIssuer},
		{name: "not yet valid", token: mintHS(t, with("nbf", testNow.Add(time.Hour).Unix())), want: TokenNotYetValid},
		{name: "expired", token: mintHS(t, with("exp", testNow.Add(-time.Hour).Unix())), want: TokenExpired},
		{name: "wrong audience", token: mintHS(t, with("aud", "another-os")), want: TokenAudience},
		{name: "padded subject", token: mintHS(t, with("sub", " u1")), want: TokenSubject},
		{name: "claim type", token: mintHS(t, with("session_id", 7)), want: TokenSubject},
	} {
		d := a.Decide(t.Context(), &Request{Method: "GET", Path: "/config", Headers: bearerH(tt.token)})
		if d.Status != 401 || d.TokenProblem != tt.want {
			t.Errorf("%s: Decide = %d %s %q token_problem %q, want 401 with %q", tt.name, d.Status, d.Reason, d.Detail, d.TokenProblem, tt.want)
		}
	}
}
