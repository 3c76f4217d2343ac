package jwtauth

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/agentos-authz/agentos-authz/internal/jwttest"
)

// The claim checks of validate (exp, nbf, iat, iss, aud and the required
// exp) are written by hand on the raw claims (claims.go, checkTimes); this
// file holds them to jwx's own jwt.Validate as the reference: for the same
// claim set, clock, leeway, issuer and audience, both must accept or both
// refuse, and a refusal must be of the same kind — expired, audience or
// other.
//
// The one difference docs/CONTRACT.md §5 makes is written here, in the
// oracle, and nowhere else: a token without aud when the audience is
// verified is "Invalid token: missing audience claim" (an invalid token),
// where jwx reports an audience error. The claim sets stay where both agree
// on what a claim is: NumericDates near the clock (jwx ignores an exp of 0,
// the contract expires it: claims.go), aud a non-empty string or list of
// them (the contract refuses an empty or non-string aud outright).

// Verdict kinds, as the service tells them apart (docs/CONTRACT.md §5).
const (
	verdictOK       = "accepted"
	verdictExpired  = "expired"
	verdictAudience = "audience"
	verdictOther    = "other invalid"
)

const (
	diffIssuer   = "https://issuer.test"
	diffAudience = "test-os"
)

// claimCase is one claim set and one configuration of the claim checks.
type claimCase struct {
	// exp, nbf and iat are seconds from the clock; nil leaves the claim out.
	exp, nbf, iat *int64
	aud           any // nil: absent; a string or []string
	iss           any // nil: absent; a string
	verifyAud     bool
	issuer        string // the configured issuer; "" checks none
	requireExp    bool
	leeway        time.Duration
	// clock is the verification time; its fraction of a second matters
	// (both truncate it to the second).
	clock time.Time
}

func (c claimCase) String() string {
	opt := func(p *int64) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprintf("%+d", *p)
	}
	return fmt.Sprintf("exp %s nbf %s iat %s aud %v iss %v | verify_audience %v issuer %q require_exp %v leeway %s clock %s",
		opt(c.exp), opt(c.nbf), opt(c.iat), c.aud, c.iss, c.verifyAud, c.issuer, c.requireExp, c.leeway, c.clock.Format(time.RFC3339Nano))
}

func (c claimCase) claims() map[string]any {
	m := map[string]any{"sub": "test_user"}
	base := c.clock.Unix()
	for name, off := range map[string]*int64{"exp": c.exp, "nbf": c.nbf, "iat": c.iat} {
		if off != nil {
			m[name] = base + *off
		}
	}
	if c.aud != nil {
		m["aud"] = c.aud
	}
	if c.iss != nil {
		m["iss"] = c.iss
	}
	return m
}

// verifier is a Verifier of HS256 tokens configured as c says.
func (c claimCase) verifier(t testing.TB, k *jwttest.Keys) *Verifier {
	t.Helper()
	cfg := defaultConfig()
	cfg.Algorithms = []string{"HS256"}
	cfg.VerificationKeys = []string{k.HS}
	cfg.Leeway = c.leeway
	cfg.Issuer = c.issuer
	cfg.VerifyAudience = c.verifyAud
	cfg.RequireExp = &c.requireExp
	clock := c.clock
	return jtVerifier(t, cfg, Options{Audience: []string{diffAudience}, Clock: func() time.Time { return clock }})
}

// ours is the verdict of Verify on raw, the token of c, under v, c's
// verifier.
func (c claimCase) ours(t testing.TB, v *Verifier, raw string) (string, *Failure) {
	t.Helper()
	_, f := v.Verify(t.Context(), raw)
	switch {
	case f == nil:
		return verdictOK, nil
	case f.Kind == Expired:
		return verdictExpired, f
	case f.Kind == WrongAudience:
		return verdictAudience, f
	case f.Kind == Invalid:
		return verdictOther, f
	}
	t.Fatalf("%v: Verify = failure kind %d, not a claim check's", c, f.Kind)
	return "", f
}

// reference is the verdict of jwt.Validate on the same claims, with the
// options that say what the configuration says, in the order validate
// checks them (jwt.Validate runs iat, exp and nbf first, then the extra
// validators in option order).
func (c claimCase) reference(t testing.TB, raw string) (string, error) {
	t.Helper()
	tok, err := jwt.ParseInsecure([]byte(raw)) // neither verifies nor validates
	if err != nil {
		t.Fatalf("%v: jwt.ParseInsecure: %v", c, err)
	}
	clock := c.clock
	opts := []jwt.ValidateOption{
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return clock })),
		jwt.WithAcceptableSkew(c.leeway),
	}
	if c.requireExp {
		opts = append(opts, jwt.WithRequiredClaim(jwt.ExpirationKey))
	}
	if c.issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.issuer))
	}
	if c.verifyAud {
		opts = append(opts, jwt.WithAudience(diffAudience))
	}
	err = jwt.Validate(tok, opts...)
	switch {
	case err == nil:
		return verdictOK, nil
	case errors.Is(err, jwt.ErrTokenExpired()):
		return verdictExpired, err
	case errors.Is(err, jwt.ErrInvalidAudience()):
		if c.aud == nil {
			// docs/CONTRACT.md §5: a missing aud when verified is an
			// invalid token, not a wrong audience.
			return verdictOther, err
		}
		return verdictAudience, err
	}
	return verdictOther, err
}

// compare mints the token of c and holds Verify under v (nil: c's own
// verifier) to jwt.Validate.
func (c claimCase) compare(t testing.TB, k *jwttest.Keys, v *Verifier) {
	t.Helper()
	if v == nil {
		v = c.verifier(t, k)
	}
	raw := jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: k.HS, Claims: c.claims()})
	got, f := c.ours(t, v, raw)
	want, err := c.reference(t, raw)
	if got != want {
		t.Errorf("%v:\n  Verify: %s (%+v)\n  jwt.Validate: %s (%v)", c, got, f, want, err)
	}
}

// TestClaimChecksMatchJWTValidate crosses the boundaries of every time
// claim (exactly at the leeway and one second past it, or absent) with present, absent, wrong and listed audiences, present, absent
// and wrong issuers, and every configuration of the checks.
func TestClaimChecksMatchJWTValidate(t *testing.T) {
	k := jwttest.LoadKeys(t)
	off := func(s int64) *int64 { return &s }
	auds := []any{nil, diffAudience, "other-os", []string{"other-os", diffAudience}, []string{"other-os"}}
	isss := []any{nil, diffIssuer, "https://other.test"}
	n := 0
	for _, leeway := range []time.Duration{0, DefaultLeeway} {
		l := int64(leeway / time.Second)
		// exp refuses from the clock minus the leeway on; nbf and iat
		// refuse after the clock plus the leeway.
		exps := []*int64{nil, off(-l), off(-l + 1)}
		later := []*int64{nil, off(l), off(l + 1)}
		// A clock inside a second: both truncate it.
		clock := jwttest.Now.Add(700 * time.Millisecond)
		for cfg := range 8 {
			var v *Verifier
			for _, exp := range exps {
				for _, nbf := range later {
					for _, iat := range later {
						for _, aud := range auds {
							for _, iss := range isss {
								c := claimCase{
									exp: exp, nbf: nbf, iat: iat, aud: aud, iss: iss,
									verifyAud: cfg&1 != 0, requireExp: cfg&2 != 0,
									leeway: leeway, clock: clock,
								}
								if cfg&4 != 0 {
									c.issuer = diffIssuer
								}
								if v == nil {
									v = c.verifier(t, k)
								}
								c.compare(t, k, v)
								n++
							}
						}
					}
				}
			}
			if t.Failed() {
				return // one configuration's differences are enough to read
			}
		}
	}
	t.Logf("%d claim sets agree with jwt.Validate", n)
}

// FuzzClaimChecks is TestClaimChecksMatchJWTValidate over any offsets (up
// to a year either side of the clock), any leeway up to a minute, any
// fraction of a second on the clock and any combination of the claims and
// checks.
func FuzzClaimChecks(f *testing.F) {
	k := jwttest.LoadKeys(f)
	// Seeds: the boundaries of the default leeway, and a few plain cases.
	for _, s := range []struct {
		exp, nbf, iat int32
		present, sel  uint8
		leeway        uint8
		frac          uint16
	}{
		{3600, 0, 0, 0b111, 0, 10, 0},
		{-10, 0, 0, 0b001, 0b0001_0011, 10, 999},
		{-9, 11, -11, 0b111, 0b0010_0101, 10, 1},
		{10, 10, 10, 0b110, 0b0110_1011, 10, 500},
		{-1, 1, 1, 0b111, 0b1111_1111, 0, 0},
		{0, 0, 0, 0b000, 0b0100_0110, 0, 250},
	} {
		f.Add(s.exp, s.nbf, s.iat, s.present, s.sel, s.leeway, s.frac)
	}
	f.Fuzz(func(t *testing.T, exp, nbf, iat int32, present, sel, leewaySecs uint8, fracMS uint16) {
		const year = 366 * 24 * 3600
		bound := func(v int32, bit uint8) *int64 {
			if present&bit == 0 {
				return nil
			}
			x := int64(v) % year
			return &x
		}
		auds := []any{nil, diffAudience, "other-os", []string{"other-os", diffAudience}}
		isss := []any{nil, diffIssuer, "https://other.test", nil}
		c := claimCase{
			exp: bound(exp, 1), nbf: bound(nbf, 2), iat: bound(iat, 4),
			aud:       auds[sel&3],
			iss:       isss[sel>>2&3],
			verifyAud: sel&16 != 0, requireExp: sel&32 != 0,
			leeway: time.Duration(leewaySecs%61) * time.Second,
			clock:  jwttest.Now.Add(time.Duration(fracMS%1000) * time.Millisecond),
		}
		if sel&64 != 0 {
			c.issuer = diffIssuer
		}
		c.compare(t, k, nil)
	})
}
