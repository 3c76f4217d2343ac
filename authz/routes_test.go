package authz

import (
	"slices"
	"testing"
)

// Every reason but the two that no step produces names its step of
// docs/CONTRACT.md §5, so a new Reason cannot be explained as step 0 by
// accident.
func TestReasonStep(t *testing.T) {
	want := map[Reason]int{
		ReasonMalformedRequest: 1, ReasonMalformedPath: 2,
		ReasonAllowedPreflight: 3, ReasonAllowedExcluded: 3,
		ReasonMissingCredential: 4, ReasonTokenExpired: 4, ReasonInvalidAudience: 4,
		ReasonInvalidToken: 4, ReasonInvalidSubject: 4, ReasonInvalidSecurityKey: 4, ReasonKeysUnavailable: 4,
		ReasonServiceAccountInvalid: 4, ReasonServiceAccountsDisabled: 4, ReasonServiceAccountThrottled: 4, ReasonServiceAccountUnavailable: 4,
		ReasonAllowed: 5, ReasonAllowedListing: 5, ReasonAllowedUnmapped: 5,
		ReasonInsufficientScopes: 5, ReasonNoRule: 5, ReasonIdentityTokenFailed: 5,
		ReasonUnknown: 0, ReasonCanceled: 0,
	}
	for _, r := range Reasons() {
		w, ok := want[r]
		if !ok {
			t.Errorf("reason %s has no expected step in this test: add it", r)
			continue
		}
		if got := r.Step(); got != w {
			t.Errorf("%s.Step() = %d, want %d", r, got, w)
		}
	}
}

func TestAuthorizerRoutes(t *testing.T) {
	a := newTestAuthorizer(t, hsConfig(`authorization: true
scope_mappings:
  "GET /agents": [agent_os:admin]
  "GET /reports/*": [reports:read]
interfaces:
  - type: a2a
  - type: slack
excluded_routes: [/health]
`), nil, nil)
	rt, ok := a.Routes()
	if !ok || !rt.Authorization {
		t.Fatalf("Routes() = %+v, %v", rt, ok)
	}
	if !slices.Equal(rt.Excluded, []string{"/health", "/slack/*"}) {
		t.Errorf("Excluded = %q, want the configured glob and the slack interface's", rt.Excluded)
	}
	origins := map[string][2]any{}
	for _, r := range rt.Table.Rules() {
		o, over := RouteOrigin(&r)
		origins[r.Key] = [2]any{o, over}
	}
	for key, want := range map[string][2]any{
		"GET /agents":                        {"custom", true},
		"GET /reports/*":                     {"custom", false},
		"GET /agents/*":                      {"default", false},
		"POST /a2a/agents/*/v1/message:send": {"interface", false},
	} {
		if got := origins[key]; got != want {
			t.Errorf("RouteOrigin(%s) = %v, want %v", key, got, want)
		}
	}
	if _, ok := (&Authorizer{}).Routes(); ok {
		t.Error("an Authorizer not built by New has routes")
	}
}

func TestCredentialHeaders(t *testing.T) {
	for _, tc := range []struct {
		yaml, header, cookie string
		prev                 string
	}{
		{hsConfig(""), "authorization", "access_token=tok", ""},
		{hsConfig("  header: X-Auth\n  cookie: sid\n"), "x-auth", "a=1; sid=tok", "a=1"},
	} {
		cfg, err := Load([]byte(tc.yaml), nil, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		h := map[string]string{}
		if tc.prev != "" {
			h["cookie"] = tc.prev
		}
		cfg.CredentialHeaders(h, "tok")
		if h[tc.header] != "Bearer tok" || h["cookie"] != tc.cookie {
			t.Errorf("CredentialHeaders = %q, want %s: Bearer tok and cookie %q", h, tc.header, tc.cookie)
		}
	}
}
