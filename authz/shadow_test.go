package authz

import (
	"slices"
	"testing"
)

func TestShadowed(t *testing.T) {
	in := &Request{Method: "GET", Path: "/agents", Headers: map[string]string{"x-agentos-user-id": "forged", "x-agentos-shadow-decision": "200 allowed"}}
	tests := []struct {
		name       string
		d          Decision
		wantShadow bool
		wantHeader string
	}{
		{name: "allow", d: Decision{Status: 200, Reason: ReasonAllowed, Upstream: []Header{{Name: headerAuth, Value: authJWT}}}, wantShadow: true, wantHeader: "200 allowed"},
		{name: "401", d: Decision{Status: 401, Reason: ReasonTokenExpired, Detail: "Token has expired"}, wantShadow: true, wantHeader: "401 token_expired"},
		{name: "403", d: Decision{Status: 403, Reason: ReasonInsufficientScopes, Response: corsHeaders("https://a.example")}, wantShadow: true, wantHeader: "403 insufficient_scopes"},
		{name: "400 path stays enforced", d: Decision{Status: 400, Reason: ReasonMalformedPath}},
		{name: "400 request stays enforced", d: Decision{Status: 400, Reason: ReasonMalformedRequest}},
		{name: "canceled stays enforced", d: canceledDecision(detailCanceled)},
		{name: "zero Decision stays enforced", d: Decision{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := shadowed(in, tc.d)
			if got.Shadow != tc.wantShadow || got.Passes() != (tc.wantShadow || tc.d.Allowed()) {
				t.Fatalf("shadowed(%d %s) Shadow=%v Passes=%v, want %v", tc.d.Status, tc.d.Reason, got.Shadow, got.Passes(), tc.wantShadow)
			}
			if !tc.wantShadow {
				return
			}
			if got.Status != tc.d.Status || got.Reason != tc.d.Reason {
				t.Errorf("shadowed changed the decision to %d %s", got.Status, got.Reason)
			}
			var value string
			for _, h := range got.Upstream {
				if h.Name == HeaderShadowDecision {
					value = h.Value
				}
				if h.Name == HeaderUserID {
					t.Errorf("shadowed %d carries an identity %q", tc.d.Status, h.Value)
				}
			}
			if value != tc.wantHeader {
				t.Errorf("%s = %q, want %q", HeaderShadowDecision, value, tc.wantHeader)
			}
			if !slices.Contains(got.Remove, HeaderUserID) || slices.Contains(got.Remove, HeaderShadowDecision) {
				t.Errorf("Remove = %q, want the forged user id removed and the shadow header set, not removed", got.Remove)
			}
			if len(got.Response) != 0 {
				t.Errorf("shadowed decision keeps error-response headers %v", got.Response)
			}
		})
	}
}
