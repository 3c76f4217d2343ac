package authz

import (
	"context"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/agentos-authz/agentos-authz/authz/serviceaccount"
)

// authServiceAccount is the x-agentos-auth value of a request authenticated
// with an AgentOS service-account token (docs/CONTRACT.md §5, §8).
const authServiceAccount = "service-account"

// Service-account details (docs/CONTRACT.md §5 table).
const (
	detailSAInvalid   = "Invalid or expired service account token"
	detailSADisabled  = "Service accounts are not enabled on this AgentOS instance"
	detailSAThrottled = "Too many failed authentication attempts"
	// detailSAForbidden is AgentOS's 403 for a service account whose scopes
	// fall short (agno/os/service_accounts.py): it names no scope, unlike
	// the JWT one.
	detailSAForbidden = "Insufficient permissions"
)

// serviceAccounts is the snapshot's part of docs/CONTRACT.md §8.
type serviceAccounts struct {
	// authn verifies agno_pat_ tokens; nil without service_accounts.db_url
	// (such a token is then refused as "not enabled").
	authn *serviceaccount.Authenticator
	// only: db_url is the only credential source (no JWT source, no
	// security key): every request but excluded routes and preflights
	// needs a service-account token.
	only bool
}

// errNoServiceAccountAuthenticator is a wiring error: the configuration has
// a db_url but New was given no authenticator to read it with.
var errNoServiceAccountAuthenticator = errors.New("service_accounts.db_url is set but no service-account authenticator was opened (authz.Options.ServiceAccounts)")

func newServiceAccounts(cfg *Config, opts Options) (serviceAccounts, error) {
	if !cfg.ServiceAccounts.Enabled() {
		return serviceAccounts{}, nil
	}
	if opts.ServiceAccounts == nil {
		return serviceAccounts{}, &FieldError{Field: "service_accounts.db_url", Err: errNoServiceAccountAuthenticator}
	}
	return serviceAccounts{
		authn: opts.ServiceAccounts,
		only:  !cfg.JWT.HasSource() && cfg.SecurityKey == "",
	}, nil
}

// authenticateAll is step 4 of docs/CONTRACT.md §5 with service accounts
// (§8): a credential starting with agno_pat_ is looked up in AgentOS's
// table and never decoded as a JWT (unless it is the security key itself,
// in security-key modes); every other credential goes to authenticate.
// With db_url the only source, a missing credential is 401 "Authorization
// header required", and any credential is a service account's.
func (s *snapshot) authenticateAll(ctx context.Context, r *Request, log *zap.Logger) (principal, string, *failure) {
	var tok string
	var ok bool
	if s.key.mode == keyOnly || s.sa.only {
		tok, ok = s.creds.headerToken(r.Headers)
	} else {
		tok, ok = s.creds.token(r.Headers)
	}
	if s.sa.only {
		if !ok {
			return principal{}, "", &failure{Reason: ReasonMissingCredential, Detail: detailKeyRequired}
		}
		return s.serviceAccount(ctx, r, tok, log)
	}
	if !ok || !strings.HasPrefix(tok, serviceaccount.TokenPrefix) {
		return s.authenticate(ctx, r)
	}
	if s.key.mode != keyOff {
		if key, hok := s.creds.headerToken(r.Headers); hok && s.key.matches(key) {
			return s.authenticate(ctx, r)
		}
	}
	return s.serviceAccount(ctx, r, tok, log)
}

// serviceAccount verifies tok with the authenticator and renders its
// Result (docs/CONTRACT.md §5 table). Logs name the account on success and
// the reason on failure; never the token or its hash.
func (s *snapshot) serviceAccount(ctx context.Context, r *Request, tok string, log *zap.Logger) (principal, string, *failure) {
	if s.sa.authn == nil {
		return principal{}, "", &failure{Reason: ReasonServiceAccountsDisabled, Detail: detailSADisabled}
	}
	res := s.sa.authn.Authenticate(ctx, tok, r.ClientAddr, s.clock())
	requestID := zap.String("request_id", r.Headers["x-request-id"])
	switch res.Kind {
	case serviceaccount.KindOK, serviceaccount.KindCached:
		if !validIdentityValue(res.Account.Name) {
			log.Warn("service account refused: its name is empty or holds whitespace or control characters",
				zap.String("account_id", res.Account.ID), requestID)
			return principal{}, "", &failure{Reason: ReasonServiceAccountInvalid, Detail: detailSAInvalid}
		}
		log.Debug("service account authenticated", zap.String("account", res.Account.Name),
			zap.Stringer("lookup", res.Kind), requestID)
		return serviceAccountPrincipal(&res.Account), authServiceAccount, nil
	case serviceaccount.KindInvalid:
		log.Info("service account token refused", zap.Stringer("why", res.Reason), requestID)
		return principal{}, "", &failure{Reason: ReasonServiceAccountInvalid, Detail: detailSAInvalid}
	case serviceaccount.KindThrottled:
		log.Warn("service account token refused: too many failed lookups from this client",
			zap.Stringer("why", res.Reason), zap.String("client", r.ClientAddr), requestID)
		return principal{}, "", &failure{Reason: ReasonServiceAccountThrottled, Detail: detailSAThrottled}
	}
	if ctx.Err() == nil {
		log.Warn("service account lookup failed: the database could not answer", zap.Error(res.Err), requestID)
	}
	return principal{}, "", &failure{Reason: ReasonServiceAccountUnavailable, Detail: DetailUnavailable}
}

// serviceAccountPrincipal is the identity of a verified account: the user
// id sa:<name>, no session, and the row's scopes that are non-empty strings
// free of whitespace and control characters (docs/CONTRACT.md §5: any
// other entry matches nothing and is left out of x-agentos-scopes).
func serviceAccountPrincipal(a *serviceaccount.Account) principal {
	kept := make([]string, 0, len(a.Scopes))
	for _, sc := range a.Scopes {
		if validScopeEntry(sc) {
			kept = append(kept, sc)
		}
	}
	return principal{userID: a.Principal(), scopes: strings.Join(kept, " ")}
}

func validScopeEntry(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if unicode.IsSpace(c) || unicode.IsControl(c) {
			return false
		}
	}
	return true
}

// validIdentityValue: non-empty, no leading or trailing whitespace, no
// control character (docs/CONTRACT.md §5, identity values).
func validIdentityValue(s string) bool {
	if s == "" || strings.TrimSpace(s) != s {
		return false
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return false
		}
	}
	return true
}
