package authz

import "testing"

// TestReasonStatus: every reason has the status of its docs/CONTRACT.md §5 row;
// the zero Reason denies.
func TestReasonStatus(t *testing.T) {
	want := map[Reason]int{
		ReasonUnknown:            403,
		ReasonAllowed:            200,
		ReasonAllowedExcluded:    200,
		ReasonAllowedPreflight:   200,
		ReasonAllowedListing:     200,
		ReasonAllowedUnmapped:    200,
		ReasonMalformedRequest:   400,
		ReasonMalformedPath:      400,
		ReasonMissingCredential:  401,
		ReasonTokenExpired:       401,
		ReasonInvalidAudience:    401,
		ReasonInvalidToken:       401,
		ReasonInvalidSubject:     401,
		ReasonInvalidSecurityKey: 401,
		ReasonInsufficientScopes: 403,
		ReasonNoRule:             403,
		ReasonCanceled:           403,
		ReasonKeysUnavailable:    503,

		ReasonServiceAccountInvalid:     401,
		ReasonServiceAccountsDisabled:   401,
		ReasonServiceAccountThrottled:   429,
		ReasonServiceAccountUnavailable: 503,
		// docs/CONTRACT.md §9: an identity token not signed.
		ReasonIdentityTokenFailed: 503,
	}
	if len(want) != len(Reasons()) {
		t.Fatalf("the table has %d reasons, Reasons() %d", len(want), len(Reasons()))
	}
	for _, r := range Reasons() {
		if got := r.Status(); got != want[r] {
			t.Errorf("%s.Status() = %d, want %d", r, got, want[r])
		}
	}
}
