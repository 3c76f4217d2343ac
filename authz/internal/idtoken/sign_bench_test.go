package idtoken

import (
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

var benchSink Token

var benchCaller = Caller{
	Subject:   "user-1234",
	SessionID: "session-5678",
	Scopes:    []string{"agents:read", "agents:web-agent:run", "sessions:read"},
	Expires:   testNow.Add(time.Hour),
}

// benchKeys are one key file per algorithm.
var benchKeys = []string{"rsa2048.pkcs8.pem", "p256.pkcs8.pem", "ed25519.pkcs8.pem"}

// BenchmarkSign is the cost of one identity token on the allow path when
// the cache has none fresh.
func BenchmarkSign(b *testing.B) {
	for _, file := range benchKeys {
		s := newTestSigner(b, loadTestKey(b, file))
		b.Run(s.Key().Alg(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tok, err := s.Sign(testNow, benchCaller)
				if err != nil {
					b.Fatal(err)
				}
				benchSink = tok
			}
		})
	}
}

// BenchmarkSignJWX is the same token through jwx's generic jwt.Sign, the
// reference BenchmarkSign is measured against (why Sign builds the JWS
// itself).
func BenchmarkSignJWX(b *testing.B) {
	for _, file := range benchKeys {
		k := loadTestKey(b, file)
		hdr := jws.NewHeaders()
		if err := hdr.Set(jws.KeyIDKey, k.KeyID()); err != nil {
			b.Fatal(err)
		}
		if err := hdr.Set(jws.TypeKey, "JWT"); err != nil {
			b.Fatal(err)
		}
		b.Run(k.Alg(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				t := jwt.New()
				for name, v := range map[string]any{
					jwt.IssuerKey: "agentos-authz", jwt.AudienceKey: []string{"my-os"}, jwt.SubjectKey: benchCaller.Subject,
					"session_id": benchCaller.SessionID, "scopes": benchCaller.Scopes,
					jwt.IssuedAtKey: testNow, jwt.ExpirationKey: testNow.Add(time.Minute), jwt.JwtIDKey: "0123456789abcdefghijkl",
				} {
					if err := t.Set(name, v); err != nil {
						b.Fatal(err)
					}
				}
				out, err := jwt.Sign(t, jwt.WithKey(jwa.SignatureAlgorithm(k.Alg()), k.priv, jws.WithProtectedHeaders(hdr)))
				if err != nil {
					b.Fatal(err)
				}
				benchSink.Value = string(out)
			}
		})
	}
}
