package authz

import (
	"testing"
)

func TestCredentialsToken(t *testing.T) {
	tests := []struct {
		name    string
		source  tokenSource
		header  string // configured header name ("" = Authorization)
		cookie  string // configured cookie name ("" = access_token)
		headers map[string]string
		want    string // "" = no credential
	}{
		{name: "bearer", headers: map[string]string{"authorization": "Bearer tok"}, want: "tok"},
		{name: "bearer lower", headers: map[string]string{"authorization": "bearer tok"}, want: "tok"},
		{name: "bearer upper", headers: map[string]string{"authorization": "BEARER tok"}, want: "tok"},
		{name: "bearer mixed", headers: map[string]string{"authorization": "bEaReR tok"}, want: "tok"},
		// docs/CONTRACT.md §5: a tab is not a separator (RFC 6750), so the whole value is a bare token.
		{name: "bearer tab", headers: map[string]string{"authorization": "Bearer\ttok"}, want: "Bearer\ttok"},
		{name: "bearer spaces then tab", headers: map[string]string{"authorization": "Bearer  \ttok"}, want: "tok"},
		{name: "bearer extra spaces", headers: map[string]string{"authorization": "  Bearer   tok  "}, want: "tok"},
		{name: "bare token", headers: map[string]string{"authorization": "a.b.c"}, want: "a.b.c"},
		{name: "no space is bare", headers: map[string]string{"authorization": "Bearertok"}, want: "Bearertok"},
		{name: "other scheme is bare", headers: map[string]string{"authorization": "Basic abc"}, want: "Basic abc"},
		{name: "empty", headers: map[string]string{"authorization": ""}},
		{name: "spaces", headers: map[string]string{"authorization": "   "}},
		{name: "bearer alone", headers: map[string]string{"authorization": "Bearer"}},
		{name: "bearer spaces", headers: map[string]string{"authorization": "Bearer    "}},
		{name: "absent", headers: map[string]string{}},
		{name: "nil headers", headers: nil},
		{name: "header source ignores cookie", headers: map[string]string{"cookie": "access_token=tok"}},
		{name: "custom header", header: "X-Auth-Token", headers: map[string]string{"x-auth-token": "Bearer tok"}, want: "tok"},
		{name: "custom header ignores authorization", header: "X-Auth-Token", headers: map[string]string{"authorization": "Bearer tok"}},

		{name: "cookie", source: sourceCookie, headers: map[string]string{"cookie": "access_token=tok"}, want: "tok"},
		{name: "cookie among others", source: sourceCookie, headers: map[string]string{"cookie": "theme=dark; access_token=tok; lang=en"}, want: "tok"},
		{name: "cookie joined with comma", source: sourceCookie, headers: map[string]string{"cookie": "theme=dark,access_token=tok"}, want: "tok"},
		{name: "cookie quoted", source: sourceCookie, headers: map[string]string{"cookie": `access_token="tok"`}, want: "tok"},
		{name: "cookie first non-empty", source: sourceCookie, headers: map[string]string{"cookie": "access_token=; access_token=tok"}, want: "tok"},
		{name: "cookie empty", source: sourceCookie, headers: map[string]string{"cookie": "access_token="}},
		{name: "cookie name is exact", source: sourceCookie, headers: map[string]string{"cookie": "Access_Token=tok; xaccess_token=t2"}},
		{name: "cookie no value", source: sourceCookie, headers: map[string]string{"cookie": "access_token"}},
		{name: "cookie source ignores header", source: sourceCookie, headers: map[string]string{"authorization": "Bearer tok"}},
		{name: "cookie custom name", source: sourceCookie, cookie: "jwt_token", headers: map[string]string{"cookie": "access_token=no; jwt_token=tok"}, want: "tok"},
		{name: "cookie value with =", source: sourceCookie, headers: map[string]string{"cookie": "access_token=a=b"}, want: "a=b"},

		{name: "both header first", source: sourceBoth, headers: map[string]string{"authorization": "Bearer h", "cookie": "access_token=c"}, want: "h"},
		{name: "both cookie fallback", source: sourceBoth, headers: map[string]string{"cookie": "access_token=c"}, want: "c"},
		{name: "both empty header falls back", source: sourceBoth, headers: map[string]string{"authorization": "Bearer ", "cookie": "access_token=c"}, want: "c"},
		{name: "both none", source: sourceBoth, headers: map[string]string{"cookie": "other=c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCredentials(tt.source, tt.header, tt.cookie)
			got, ok := c.token(tt.headers)
			if ok != (tt.want != "") || got != tt.want {
				t.Errorf("token(%v) = %q, %v; want %q", tt.headers, got, ok, tt.want)
			}
		})
	}
}

func TestCredentialsMissingDetail(t *testing.T) {
	tests := []struct {
		source tokenSource
		header string
		cookie string
		want   string
	}{
		{source: sourceHeader, want: "Authorization header missing"},
		{source: sourceHeader, header: "X-Auth-Token", want: "Authorization header missing"},
		{source: sourceCookie, want: "JWT cookie 'access_token' missing"},
		{source: sourceCookie, cookie: "jwt_token", want: "JWT cookie 'jwt_token' missing"},
		{source: sourceBoth, want: "JWT token missing from both Authorization header and 'access_token' cookie"},
		{source: sourceBoth, cookie: "jwt_cookie", want: "JWT token missing from both Authorization header and 'jwt_cookie' cookie"},
	}
	for _, tt := range tests {
		c := newCredentials(tt.source, tt.header, tt.cookie)
		if c.missing != tt.want {
			t.Errorf("newCredentials(%v, %q, %q).missing = %q, want %q", tt.source, tt.header, tt.cookie, c.missing, tt.want)
		}
	}
}

func TestParseTokenSource(t *testing.T) {
	for in, want := range map[string]tokenSource{"": sourceHeader, "header": sourceHeader, "cookie": sourceCookie, "both": sourceBoth} {
		if got, err := parseTokenSource(in); err != nil || got != want {
			t.Errorf("parseTokenSource(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"Header", "query", "headers"} {
		if _, err := parseTokenSource(in); err == nil {
			t.Errorf("parseTokenSource(%q) succeeded, want an error", in)
		}
	}
}

func TestCredentialsNoAllocs(t *testing.T) {
	c := newCredentials(sourceBoth, "", "")
	h := map[string]string{"authorization": "  ", "cookie": "theme=dark; access_token=\"tok\"; lang=en"}
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := c.token(h); !ok {
			t.Fatal("no token")
		}
	})
	if allocs != 0 {
		t.Errorf("token allocates %v times, want 0", allocs)
	}
}

func FuzzCredentials(f *testing.F) {
	f.Add("Bearer tok", "a=b; access_token=tok")
	f.Add("bearer", "access_token=")
	f.Add("", `access_token="`)
	f.Fuzz(func(t *testing.T, authz, cookie string) {
		c := newCredentials(sourceBoth, "", "")
		tok, ok := c.token(map[string]string{"authorization": authz, "cookie": cookie})
		if ok == (tok == "") {
			t.Fatalf("token(%q, %q) = %q, %v: ok must mean non-empty", authz, cookie, tok, ok)
		}
		if ok && tok != trimSpace(tok) {
			t.Fatalf("token(%q, %q) = %q: untrimmed", authz, cookie, tok)
		}
	})
}

func TestSecurityKeyMatches(t *testing.T) {
	k := newSecurityKey("sk-test-0123456789abcdef", false)
	if k.mode != keyOnly {
		t.Fatalf("mode = %v, want keyOnly", k.mode)
	}
	for presented, want := range map[string]bool{
		"sk-test-0123456789abcdef":  true,
		"sk-test-0123456789abcdeF":  false,
		"sk-test-0123456789abcde":   false,
		"sk-test-0123456789abcdef ": false,
		"":                          false,
	} {
		if got := k.matches(presented); got != want {
			t.Errorf("matches(%q) = %v, want %v", presented, got, want)
		}
	}
	if m := newSecurityKey("k", true).mode; m != keyMigration {
		t.Errorf("with a JWT source: mode = %v, want keyMigration", m)
	}
	if m := newSecurityKey("", true).mode; m != keyOff {
		t.Errorf("no key: mode = %v, want keyOff", m)
	}
}
