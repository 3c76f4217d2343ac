package jwtauth

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/agentos-authz/agentos-authz/internal/jwttest"
	"github.com/agentos-authz/agentos-authz/internal/poll"
)

// faults is the fault of every fetch o saw, in order: "" for a success,
// "untyped" for an error that is not a *FetchError.
func faults(o *jwttest.Observer) []FetchFault {
	var out []FetchFault
	for _, err := range o.Errors() {
		var fe *FetchError
		switch {
		case err == nil:
			out = append(out, "")
		case errors.As(err, &fe):
			out = append(out, fe.Fault)
		default:
			out = append(out, "untyped")
		}
	}
	return out
}

// startRemote starts a remoteJWKS for url; the test's end closes it.
func startRemote(t testing.TB, o remoteJWKSOptions) *remoteJWKS {
	t.Helper()
	r, err := newRemoteJWKS(o)
	if err != nil {
		t.Fatalf("newRemoteJWKS: %v", err)
	}
	r.Start(t.Context())
	t.Cleanup(r.Close)
	return r
}

// remoteVerifier is a verifier of RS256 tokens whose only keys are src's.
func remoteVerifier(t testing.TB, src jwksSource) *Verifier {
	c := defaultConfig()
	c.JWKSURL = "https://unused.example/jwks.json"
	return jtVerifier(t, c, Options{jwks: src})
}

func verifies(t testing.TB, v *Verifier, tok string) bool {
	t.Helper()
	_, f := v.Verify(t.Context(), tok)
	return f == nil
}

func TestRemoteJWKSRotation(t *testing.T) {
	keys := jwttest.NewRotation(t, jwttest.LoadKeys(t))
	srv := jwttest.NewJWKSServer(t, keys.Only1)
	clock := jwttest.NewFakeClock(jwttest.Now)
	obs := &jwttest.Observer{}
	src := startRemote(t, remoteJWKSOptions{URL: srv.URL, Clock: clock.Now, Observer: obs, Logger: zap.NewNop()})
	poll.For(t, "the first key set", src.Ready)
	v := remoteVerifier(t, src)

	if !verifies(t, v, keys.Tok1) {
		t.Fatal("Verify(k1 token) with [k1] = invalid, want valid")
	}
	if verifies(t, v, keys.Tok2) {
		t.Fatal("Verify(k2 token) with [k1] = valid, want invalid")
	}
	// The IdP publishes k2 beside k1: the next k2 token refetches at once.
	// The refetch for the invalid k2 token above was less than 10 s ago:
	// move past the rate limit.
	clock.Advance(jwksRefetchGap)
	srv.Set("ok", keys.Both)
	if !verifies(t, v, keys.Tok2) {
		t.Fatal("Verify(k2 token) after k2 was published = invalid, want valid (kid-miss refetch)")
	}
	if !verifies(t, v, keys.Tok1) {
		t.Fatal("Verify(k1 token) with [k1 k2] = invalid, want valid (overlap)")
	}
	// k1 is retired: once the set is refetched, k1 tokens stop verifying.
	srv.Set("ok", keys.Only2)
	clock.Advance(jwksRefetchGap)
	if _, err := src.Refetch(t.Context(), "any"); err != nil {
		t.Fatalf("Refetch: %v", err)
	}
	if verifies(t, v, keys.Tok1) {
		t.Fatal("Verify(k1 token) after k1 was removed = valid, want invalid")
	}
	if !verifies(t, v, keys.Tok2) {
		t.Fatal("Verify(k2 token) with [k2] = invalid, want valid")
	}
	if g := src.Generation(); g != 3 {
		t.Errorf("Generation() = %d, want 3 ([k1], [k1 k2], [k2])", g)
	}
}

func TestRemoteJWKSBackgroundRefresh(t *testing.T) {
	keys := jwttest.NewRotation(t, jwttest.LoadKeys(t))
	srv := jwttest.NewJWKSServer(t, keys.Both)
	clock := jwttest.NewFakeClock(jwttest.Now)
	src := startRemote(t, remoteJWKSOptions{URL: srv.URL, Refresh: time.Second, Clock: clock.Now, After: clock.After, Logger: zap.NewNop()})
	poll.For(t, "the first key set", src.Ready)
	v := remoteVerifier(t, src)
	if !verifies(t, v, keys.Tok1) {
		t.Fatal("Verify(k1 token) with [k1 k2] = invalid, want valid")
	}
	// tick lets the refresh loop's wait (1 s on the clock) end, once the
	// loop waits.
	tick := func() {
		t.Helper()
		poll.For(t, "the refresh loop to wait", func() bool { return clock.Waiting() == 1 })
		hits := srv.Hits.Load()
		if clock.Advance(999 * time.Millisecond); clock.Waiting() != 1 {
			t.Fatal("the refresh came before its interval")
		}
		clock.Advance(time.Millisecond)
		poll.For(t, "a refresh", func() bool { return srv.Hits.Load() > hits })
	}
	// No kid miss here: only the refresh (every 1 s) can notice.
	srv.Set("ok", keys.Only2)
	tick()
	poll.For(t, "the refresh to drop k1", func() bool { return !verifies(t, v, keys.Tok1) })
	if !verifies(t, v, keys.Tok2) {
		t.Fatal("Verify(k2 token) after the refresh = invalid, want valid")
	}
	// The refresh keeps its pace: an unchanged document keeps the set.
	gen, hits := src.Generation(), srv.Hits.Load()
	tick()
	tick()
	poll.For(t, "two more refreshes", func() bool { return srv.Hits.Load() >= hits+2 })
	poll.For(t, "the refresh loop to wait", func() bool { return clock.Waiting() == 1 })
	if g := src.Generation(); g != gen {
		t.Errorf("Generation() after unchanged refreshes = %d, want %d", g, gen)
	}
}

func TestRemoteJWKSRefetchRateLimit(t *testing.T) {
	keys := jwttest.NewRotation(t, jwttest.LoadKeys(t))
	srv := jwttest.NewJWKSServer(t, keys.Only1)
	clock := jwttest.NewFakeClock(jwttest.Now)
	obs := &jwttest.Observer{}
	src := startRemote(t, remoteJWKSOptions{URL: srv.URL, Clock: clock.Now, Observer: obs, Logger: zap.NewNop()})
	poll.For(t, "the first key set", src.Ready)
	v := remoteVerifier(t, src)
	base := srv.Hits.Load()

	// A flood of forged kids, concurrently: one fetch at most.
	k := jwttest.LoadKeys(t)
	forged := make([]string, 50)
	for i := range forged {
		forged[i] = jwttest.Mint(t, jwttest.Token{Alg: "RS256", Key: k.RS2.Priv, Header: map[string]any{"kid": fmt.Sprintf("forged-%d", i)}, Claims: jwttest.Claims(nil)})
	}
	var wg sync.WaitGroup
	for _, tok := range forged {
		wg.Go(func() {
			if verifies(t, v, tok) {
				t.Error("Verify(forged kid) = valid")
			}
		})
	}
	wg.Wait()
	if n := srv.Hits.Load() - base; n != 1 {
		t.Fatalf("JWKS requests for 50 unknown kids = %d, want 1", n)
	}
	// Still within 10 s: nothing more, and the refusal is counted.
	clock.Advance(jwksRefetchGap - time.Second)
	limited := obs.Limited.Load()
	if verifies(t, v, keys.Tok2) {
		t.Fatal("Verify(k2 token) = valid, want invalid")
	}
	if n := obs.Limited.Load(); n != limited+1 {
		t.Errorf("RefetchLimited reports = %d, want %d", n, limited+1)
	}
	if n := srv.Hits.Load() - base; n != 1 {
		t.Fatalf("JWKS requests 9 s after the refetch = %d, want still 1", n)
	}
	// 10 s later a kid miss may refetch again, and picks up k2.
	srv.Set("ok", keys.Both)
	clock.Advance(time.Second)
	if !verifies(t, v, keys.Tok2) {
		t.Fatal("Verify(k2 token) 10 s later = invalid, want valid after the second refetch")
	}
	if n := srv.Hits.Load() - base; n != 2 {
		t.Fatalf("JWKS requests after the gap = %d, want 2", n)
	}
}

func TestRemoteJWKSFaultsKeepLastGoodKeys(t *testing.T) {
	if jwttest.HugeSize != maxJWKSBytes {
		t.Fatalf("jwttest.HugeSize = %d, want the verifier's limit %d: the huge fault would not be one", jwttest.HugeSize, maxJWKSBytes)
	}
	keys := jwttest.NewRotation(t, jwttest.LoadKeys(t))
	cases := []struct {
		mode  string
		fault FetchFault
		log   string // a piece of the logged error
	}{
		{mode: "down", fault: FaultStatus, log: "503"},
		{mode: "slow", fault: FaultTimeout, log: "no complete answer within"},
		{mode: "garbage", fault: FaultMalformed, log: "not a JWK Set"},
		{mode: "huge", fault: FaultTooLarge, log: "larger than 1 MiB"},
		{mode: "nokeys", fault: FaultMalformed, log: "no usable signature key"},
		{mode: "closed", fault: FaultNetwork, log: "connection refused"},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			srv := jwttest.NewJWKSServer(t, keys.Only1)
			clock := jwttest.NewFakeClock(jwttest.Now)
			obs := &jwttest.Observer{}
			core, logs := observer.New(zapcore.DebugLevel)
			// A short timeout only where it is the fault: the 1 MiB body
			// must not time out on a loaded machine.
			timeout := jwksFetchTimeout
			if tc.mode == "slow" {
				timeout = 300 * time.Millisecond
			}
			src := startRemote(t, remoteJWKSOptions{URL: srv.URL, Clock: clock.Now, Observer: obs,
				Logger: zap.New(core), Timeout: timeout})
			poll.For(t, "the first key set", src.Ready)
			v := remoteVerifier(t, src)
			before := src.Generation()

			if tc.mode == "closed" {
				srv.Close()
			} else {
				srv.Set(tc.mode, nil)
			}
			clock.Advance(jwksRefetchGap)
			if set, err := src.Refetch(t.Context(), "k9"); err == nil || set != nil {
				t.Fatalf("Refetch during %s = %v, %v; want an error", tc.mode, set, err)
			}
			if !verifies(t, v, keys.Tok1) {
				t.Fatalf("Verify(k1 token) while the JWKS server is %s = invalid, want valid with the last good keys", tc.mode)
			}
			if !src.Ready() || src.Generation() != before {
				t.Errorf("after a %s fetch: Ready %v, generation %d; want true, %d", tc.mode, src.Ready(), src.Generation(), before)
			}
			f := faults(obs)
			if len(f) < 2 || f[len(f)-1] != tc.fault {
				t.Errorf("observed fetches = %q, want the last to be %q", f, tc.fault)
			}
			lines := logs.FilterMessage("JWKS fetch failed: keeping the last good key set").All()
			if len(lines) == 0 {
				t.Fatalf("no log line for the failed fetch; logs: %v", logs.All())
			}
			ctx := lines[len(lines)-1].ContextMap()
			if ctx["url"] != srv.URL || !strings.Contains(ctx["error"].(string), tc.log) || ctx["fault"] != string(tc.fault) {
				t.Errorf("log fields = %v, want url %s, fault %s, error containing %q", ctx, srv.URL, tc.fault, tc.log)
			}
		})
	}
}

func TestRemoteJWKSNotReadyUntilFirstLoad(t *testing.T) {
	keys := jwttest.NewRotation(t, jwttest.LoadKeys(t))
	srv := jwttest.NewJWKSServer(t, keys.Only1)
	srv.Set("down", nil)
	core, logs := observer.New(zapcore.InfoLevel)
	clock := jwttest.NewFakeClock(jwttest.Now)
	src := startRemote(t, remoteJWKSOptions{URL: srv.URL, Refresh: time.Second, Clock: clock.Now, After: clock.After, Logger: zap.New(core)})
	poll.For(t, "a failed first fetch", func() bool { return srv.Hits.Load() > 0 && logs.Len() > 0 })
	if src.Ready() {
		t.Fatal("Ready() = true before any key set was loaded")
	}
	line := logs.All()[0]
	if line.Message != "JWKS not loaded: not ready until a key set is fetched" || line.Level != zapcore.ErrorLevel ||
		line.ContextMap()["url"] != srv.URL || !strings.Contains(line.ContextMap()["error"].(string), "503") {
		t.Errorf("first log line = %s %q %v; want the not-ready error with the URL and the 503", line.Level, line.Message, line.ContextMap())
	}
	v := remoteVerifier(t, src)
	if verifies(t, v, keys.Tok1) {
		t.Fatal("Verify before the first key set = valid")
	}
	// The server recovers: the retry (after 1 s on the clock here) loads
	// the keys.
	srv.Set("ok", nil)
	poll.For(t, "the retry to wait", func() bool { return clock.Waiting() == 1 })
	if src.Ready() {
		t.Fatal("Ready() = true before the retry")
	}
	clock.Advance(time.Second)
	poll.For(t, "readiness after the server recovered", src.Ready)
	if !verifies(t, v, keys.Tok1) {
		t.Fatal("Verify(k1 token) once ready = invalid, want valid")
	}
}

// TestRemoteJWKSCloseWaitsForFetches: Close returns only once every fetch
// the source started has ended — the refresh loop's and a kid-miss
// refetch whose request gave up waiting — each reported as canceled.
func TestRemoteJWKSCloseWaitsForFetches(t *testing.T) {
	keys := jwttest.NewRotation(t, jwttest.LoadKeys(t))
	srv := jwttest.NewJWKSServer(t, keys.Only1)
	srv.Set("slow", nil)
	obs := &jwttest.Observer{}
	src, err := newRemoteJWKS(remoteJWKSOptions{URL: srv.URL, Observer: obs, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	src.Start(t.Context())
	poll.For(t, "the first load under way", func() bool { return srv.Hits.Load() == 1 })
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	if set, err := src.Refetch(gone, "k9"); err == nil || set != nil {
		t.Fatalf("Refetch(cancelled) = %v, %v; want the context's error", set, err)
	}
	poll.For(t, "the refetch under way", func() bool { return srv.Hits.Load() == 2 })
	if f := faults(obs); len(f) != 0 {
		t.Fatalf("fetches reported before Close = %q, want none (both still running)", f)
	}
	src.Close()
	if f := faults(obs); len(f) != 2 || f[0] != FaultCanceled || f[1] != FaultCanceled {
		t.Fatalf("fetches reported when Close returned = %q, want two canceled", f)
	}
}

func TestRemoteJWKSTLS(t *testing.T) {
	keys := jwttest.NewRotation(t, jwttest.LoadKeys(t))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(keys.Only1)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	t.Cleanup(srv.Close)

	// Not in the system roots: refused.
	obs := &jwttest.Observer{}
	untrusted := startRemote(t, remoteJWKSOptions{URL: srv.URL, Observer: obs, Logger: zap.NewNop()})
	poll.For(t, "a failed fetch", func() bool { return len(faults(obs)) > 0 })
	if untrusted.Ready() {
		t.Fatal("Ready() with a certificate from an unknown authority = true")
	}
	if f := faults(obs); f[0] != FaultNetwork {
		t.Errorf("fault = %q, want %q", f[0], FaultNetwork)
	}

	// Trusted through jwks_ca_file.
	ca := jwttest.WriteFile(t, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	roots, err := loadCAFile(ca, io.Discard)
	if err != nil {
		t.Fatalf("loadCAFile: %v", err)
	}
	trusted := startRemote(t, remoteJWKSOptions{URL: srv.URL, RootCAs: roots, Logger: zap.NewNop()})
	poll.For(t, "the key set over TLS", trusted.Ready)
	if !verifies(t, remoteVerifier(t, trusted), keys.Tok1) {
		t.Fatal("Verify(k1 token) over TLS = invalid, want valid")
	}
}

func TestRemoteJWKSRedirectToPlainHTTPRefused(t *testing.T) {
	keys := jwttest.NewRotation(t, jwttest.LoadKeys(t))
	target := jwttest.NewJWKSServer(t, keys.Only1)
	// A redirect to plain HTTP off loopback: jwks_allow_insecure is off.
	redirect := httptest.NewServer(http.RedirectHandler("http://idp.invalid/jwks.json", http.StatusFound))
	t.Cleanup(redirect.Close)
	obs := &jwttest.Observer{}
	src := startRemote(t, remoteJWKSOptions{URL: redirect.URL, Observer: obs, Logger: zap.NewNop()})
	poll.For(t, "a failed fetch", func() bool { return len(faults(obs)) > 0 })
	if f := faults(obs); f[0] != FaultRefused {
		t.Errorf("fault = %q, want %q", f[0], FaultRefused)
	}
	if src.Ready() || target.Hits.Load() != 0 {
		t.Errorf("Ready %v, target hits %d; want false, 0", src.Ready(), target.Hits.Load())
	}
}

func TestRefreshInterval(t *testing.T) {
	cases := []struct {
		cacheControl string
		want         time.Duration
	}{
		{"", 5 * time.Minute},
		{"no-cache", 5 * time.Minute},
		{"public, max-age=3600", time.Hour},
		{"max-age=30", time.Minute}, // raised to the floor
		{"max-age=0, must-revalidate", time.Minute},
		{"MAX-AGE=600", 10 * time.Minute},
		{"max-age=604800", 24 * time.Hour},                // lowered to the ceiling
		{"max-age=99999999999999999999", 5 * time.Minute}, // unreadable: ignored
		{"max-age=-5", 5 * time.Minute},
		{`max-age="120"`, 2 * time.Minute},
	}
	for _, tc := range cases {
		if got := refreshInterval(tc.cacheControl, 5*time.Minute); got != tc.want {
			t.Errorf("refreshInterval(%q, 5m) = %s, want %s", tc.cacheControl, got, tc.want)
		}
	}
}

func TestRemoteJWKSHonoursMaxAge(t *testing.T) {
	keys := jwttest.NewRotation(t, jwttest.LoadKeys(t))
	srv := jwttest.NewJWKSServer(t, keys.Only1)
	srv.SetCacheControl("max-age=3600")
	src, err := newRemoteJWKS(remoteJWKSOptions{URL: srv.URL, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	src.Start(t.Context())
	t.Cleanup(src.Close)
	_, next, err := src.fetch(t.Context(), srv.URL)
	if err != nil || next != time.Hour {
		t.Fatalf("fetch = next %s, %v; want 1h from Cache-Control", next, err)
	}
}

func TestCheckFetchURL(t *testing.T) {
	cases := []struct {
		url      string
		insecure bool
		want     string // "" = accepted; else a piece of the error
	}{
		{url: "https://idp.example/.well-known/jwks.json"},
		{url: "http://127.0.0.1:8080/jwks"},
		{url: "http://[::1]/jwks"},
		{url: "http://localhost:9000/jwks"},
		{url: "http://idp.example/jwks", want: "plain HTTP to a host that is not loopback"},
		{url: "http://idp.example/jwks", insecure: true},
		{url: "http://10.0.0.1/jwks", want: "not loopback"},
		{url: "ftp://idp.example/jwks", want: "not an http(s) URL"},
		{url: "/jwks.json", want: "not an absolute"},
		{url: "idp.example/jwks", want: "not an absolute"},
		{url: "https://user:secret@idp.example/jwks", want: "must not carry user information"},
		{url: "https://idp.example/jwks#x", want: "fragment"},
	}
	for _, tc := range cases {
		_, err := checkFetchURL(tc.url, tc.insecure)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("checkFetchURL(%q, %v) = %v, want accepted", tc.url, tc.insecure, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("checkFetchURL(%q, %v) = %v, want an error containing %q", tc.url, tc.insecure, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("checkFetchURL(%q) error quotes the password: %v", tc.url, err)
		}
	}
}

// TestRemoteJWKSOnFirstLoad: the first key set is announced once, when
// Ready has turned true; neither a failed fetch before it nor a later key
// change announces anything.
func TestRemoteJWKSOnFirstLoad(t *testing.T) {
	keys := jwttest.NewRotation(t, jwttest.LoadKeys(t))
	srv := jwttest.NewJWKSServer(t, keys.Only1)
	srv.Set("down", nil)
	clock := jwttest.NewFakeClock(jwttest.Now)
	loaded := make(chan bool, 4) // Ready as the callback saw it
	var src *remoteJWKS
	var mu sync.Mutex // src is set after newRemoteJWKS, read by the callback
	mu.Lock()
	src = startRemote(t, remoteJWKSOptions{URL: srv.URL, Refresh: time.Second, Clock: clock.Now, After: clock.After, Logger: zap.NewNop(),
		OnFirstLoad: func() {
			mu.Lock()
			defer mu.Unlock()
			loaded <- src.Ready()
		}})
	mu.Unlock()
	poll.For(t, "the failed first fetch's retry to wait", func() bool { return clock.Waiting() == 1 })
	select {
	case <-loaded:
		t.Fatal("OnFirstLoad called after a failed fetch")
	default:
	}
	srv.Set("ok", nil)
	clock.Advance(time.Second)
	if ready := <-loaded; !ready {
		t.Error("OnFirstLoad called while Ready() = false")
	}
	// A new key set (the next refresh) is no first load.
	srv.Set("ok", keys.Only2)
	poll.For(t, "the refresh to wait", func() bool { return clock.Waiting() == 1 })
	clock.Advance(time.Second)
	poll.For(t, "the new key set", func() bool { return src.Generation() == 2 })
	select {
	case <-loaded:
		t.Error("OnFirstLoad called again for a later key set")
	default:
	}
}
