package idtoken_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/agentos-authz/agentos-authz/authz/internal/idtoken"
)

// The allow path of a decision: sign once, keep the Token beside the
// verified caller token, send it while Fresh.
func Example() {
	key, err := idtoken.LoadKey("testdata/ed25519.pkcs8.pem")
	if err != nil {
		fmt.Println(err)
		return
	}
	signer, err := idtoken.NewSigner(idtoken.Options{Issuer: "agentos-authz", Audience: "my-os", TTL: time.Minute}, key)
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	caller := idtoken.Caller{Subject: "alice", Scopes: []string{"agents:read"}, Expires: now.Add(time.Hour)}
	tok, err := signer.Sign(now, caller)
	if err != nil {
		fmt.Println(err)
		return
	}

	// What AgentOS does with JWT_JWKS_FILE = the published set.
	set, err := jwk.Parse(signer.JWKS())
	if err != nil {
		fmt.Println(err)
		return
	}
	parsed, err := jwt.Parse([]byte(tok.Value), jwt.WithKeySet(set),
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })), jwt.WithAudience("my-os"))
	if err != nil {
		fmt.Println(err)
		return
	}
	scopes, _ := parsed.Get("scopes")
	fmt.Println(parsed.Subject(), scopes, parsed.Expiration().Sub(now))
	fmt.Println("fresh after 40s:", tok.Fresh(now.Add(40*time.Second)))
	fmt.Println("fresh after 50s:", tok.Fresh(now.Add(50*time.Second)))
	// Output:
	// alice [agents:read] 1m0s
	// fresh after 40s: true
	// fresh after 50s: false
}

// TestSignConcurrent: one Signer serves every request goroutine.
func TestSignConcurrent(t *testing.T) {
	key, err := idtoken.LoadKey("testdata/p256.pkcs8.pem")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := idtoken.NewSigner(idtoken.Options{Issuer: "i", Audience: "os", TTL: time.Minute}, key)
	if err != nil {
		t.Fatal(err)
	}
	set, err := jwk.Parse(signer.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 20 {
				tok, err := signer.Sign(time.Now(), idtoken.Caller{Subject: fmt.Sprintf("u%d-%d", g, i)})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := jwt.Parse([]byte(tok.Value), jwt.WithKeySet(set)); err != nil {
					t.Errorf("token %d of goroutine %d: %v", i, g, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
