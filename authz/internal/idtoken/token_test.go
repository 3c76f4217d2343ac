package idtoken

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMargin(t *testing.T) {
	for _, c := range []struct {
		ttl, want time.Duration
	}{
		{ttl: time.Second, want: 0},
		{ttl: 10 * time.Second, want: 5 * time.Second},  // half of the ttl caps 10 s
		{ttl: 20 * time.Second, want: 10 * time.Second}, // 10 s
		{ttl: 30 * time.Second, want: 10 * time.Second}, // 10 s over 7.5 s
		{ttl: 60 * time.Second, want: 15 * time.Second}, // the default: a quarter
		{ttl: time.Hour, want: 15 * time.Minute},
		{ttl: 61 * time.Second, want: 15 * time.Second}, // whole seconds
	} {
		if got := Margin(c.ttl); got != c.want {
			t.Errorf("Margin(%v) = %v, want %v", c.ttl, got, c.want)
		}
	}
}

// TestFresh: a token is re-signed Margin(ttl) before its exp, unless its
// exp is the caller's (signing again would not give more time).
func TestFresh(t *testing.T) {
	s := newTestSigner(t, loadTestKey(t, "ed25519.pkcs8.pem")) // ttl 60 s, margin 15 s
	full, err := s.Sign(testNow, Caller{Subject: "a", Expires: testNow.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	capped, err := s.Sign(testNow, Caller{Subject: "a", Expires: testNow.Add(30 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		tok  Token
		at   time.Duration // after testNow
		want bool
	}{
		{name: "just signed", tok: full, at: 0, want: true},
		{name: "16 s left", tok: full, at: 44 * time.Second, want: true},
		{name: "15.5 s left", tok: full, at: 44*time.Second + 500*time.Millisecond, want: true},
		{name: "15 s left: margin reached", tok: full, at: 45 * time.Second, want: false},
		{name: "expired", tok: full, at: 2 * time.Minute, want: false},
		{name: "capped, just signed", tok: capped, at: 0, want: true},
		{name: "capped, 1 s left", tok: capped, at: 29 * time.Second, want: true},
		{name: "capped, past exp: signing again gives the same exp", tok: capped, at: 35 * time.Second, want: true},
		{name: "zero Token", tok: Token{}, at: 0, want: false},
	} {
		if got := c.tok.Fresh(testNow.Add(c.at)); got != c.want {
			t.Errorf("%s: Fresh(now+%v) = %v, want %v", c.name, c.at, got, c.want)
		}
	}
	// A re-signed capped token has the same exp: nothing was lost.
	again, err := s.Sign(testNow.Add(35*time.Second), Caller{Subject: "a", Expires: testNow.Add(30 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Expires().Equal(capped.Expires()) {
		t.Errorf("re-signed capped token exp %v, want the caller's %v", again.Expires(), capped.Expires())
	}
}
