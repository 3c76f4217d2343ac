package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/envoy"
)

// soak runs the service for a long time at a fixed rate (open loop) with
// pooled tokens (and their replayed invalid ones), fresh tokens and a
// share of garbage requests, sampling the service's memory and goroutines
// from its /metrics, and fails when they grow without bound or a call
// fails at the transport.

type soakFlags struct {
	bin          string
	duration     time.Duration
	sample       time.Duration
	rate         float64
	tokens       int
	fresh        float64
	garbage      float64
	concurrency  int
	conns        int
	timeout      time.Duration
	startTimeout time.Duration
	rssMargin    float64
	rssSlack     float64 // MiB
	gorMargin    float64
	gorSlack     int
	seed         uint64
}

func parseSoakFlags(args []string, stderr io.Writer) (*soakFlags, error) {
	f := &soakFlags{}
	fs := flag.NewFlagSet("authz-bench soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.bin, "bin", "bin/agentos-authz", "service binary (make build)")
	fs.DurationVar(&f.duration, "duration", 10*time.Minute, "length of the soak")
	fs.DurationVar(&f.sample, "sample", 10*time.Second, "interval of the RSS and goroutine samples")
	fs.Float64Var(&f.rate, "rate", 500, "checks per second (open loop)")
	fs.IntVar(&f.tokens, "tokens", 1000, "pool of valid tokens (HS256 and RS256), sent round-robin with 6% replayed invalid tokens")
	fs.Float64Var(&f.fresh, "fresh", 0.2, "share of checks carrying a token never sent before (HS256)")
	fs.Float64Var(&f.garbage, "garbage", 0.01, "share of garbage checks: malformed paths, undecodable tokens, oversized headers")
	fs.IntVar(&f.concurrency, "concurrency", 256, "most checks in flight; a check due beyond it is counted late")
	fs.IntVar(&f.conns, "conns", 2, "gRPC connections")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Second, "bound of one call and of connecting")
	fs.DurationVar(&f.startTimeout, "start-timeout", 15*time.Second, "bound of the service's start")
	fs.Float64Var(&f.rssMargin, "rss-margin", 0.25, "fail when the last third's max RSS exceeds the first third's by more than this share")
	fs.Float64Var(&f.rssSlack, "rss-slack", 8, "... plus this many MiB")
	fs.Float64Var(&f.gorMargin, "goroutine-margin", 0.5, "fail when the last third's max goroutines exceed the first third's by more than this share")
	fs.IntVar(&f.gorSlack, "goroutine-slack", 20, "... plus this many")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the token choice and request order")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: authz-bench soak [--bin bin/agentos-authz] [--duration 10m] [--rate 500] [flags]\n\n"+
			"Starts the service (temporary keys, loopback ports), sends --rate checks a second for --duration:\n"+
			"pooled tokens with replayed invalid ones, --fresh new tokens, --garbage garbage requests. Every\n"+
			"--sample it prints the service's RSS and goroutines (its /metrics); at the end it fails when a call\n"+
			"failed at the transport or RSS or goroutines grew from the first third of the run to the last.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var errs []error
	if f.duration < 3*f.sample || f.sample <= 0 {
		errs = append(errs, fmt.Errorf("--duration %v: want at least three --sample intervals (%v)", f.duration, f.sample))
	}
	if !(f.rate > 0 && f.rate <= 1e5) {
		errs = append(errs, fmt.Errorf("--rate %v: want more than 0, at most 100000 checks/s", f.rate))
	}
	if f.tokens < 1 {
		errs = append(errs, fmt.Errorf("--tokens %d: want at least 1", f.tokens))
	}
	if !(f.fresh >= 0 && f.garbage >= 0 && f.fresh+f.garbage <= 1) {
		errs = append(errs, fmt.Errorf("--fresh %v, --garbage %v: want shares from 0 adding up to at most 1", f.fresh, f.garbage))
	}
	if f.concurrency < 1 || f.conns < 1 || f.timeout <= 0 || f.startTimeout <= 0 {
		errs = append(errs, errors.New("--concurrency, --conns, --timeout and --start-timeout must be positive"))
	}
	if f.rssMargin < 0 || f.rssSlack < 0 || f.gorMargin < 0 || f.gorSlack < 0 {
		errs = append(errs, errors.New("the margins and slacks must not be negative"))
	}
	return f, errors.Join(errs...)
}

func cmdSoak(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseSoakFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "authz-bench soak: %v\n", err)
		return 2
	}
	rep, err := runSoak(ctx, f, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "authz-bench soak: %v\n", err)
		return 1
	}
	printSoak(stdout, f, rep)
	if len(rep.Failures) > 0 {
		return 1
	}
	return 0
}

// soakSample is one reading of the service's /metrics.
type soakSample struct {
	At         time.Duration
	RSS        float64 // bytes
	Goroutines float64
	Sent       uint64
}

type soakReport struct {
	Samples  []soakSample
	Result   *Result
	Sent     map[string]int64 // checks sent per kind
	Failures []string
}

// soakMix picks the checks of a soak: garbage, fresh or pooled by a hash
// of the position, so that the shares hold over any stretch of the run.
type soakMix struct {
	pooled, fresh, garbage []wireRequest
	freshShare, garbShare  float64
	seed                   uint64
	pi, fi, gi             atomic.Uint64
	sentFresh, sentGarbage atomic.Int64
	sentPooled             atomic.Int64
}

func (m *soakMix) next(i uint64) (*wireRequest, bool) {
	u := float64(splitmix(i^m.seed)>>11) / (1 << 53)
	switch {
	case u < m.garbShare && len(m.garbage) > 0:
		m.sentGarbage.Add(1)
		return &m.garbage[(m.gi.Add(1)-1)%uint64(len(m.garbage))], true
	case u < m.garbShare+m.freshShare:
		if j := m.fi.Add(1) - 1; j < uint64(len(m.fresh)) {
			m.sentFresh.Add(1)
			return &m.fresh[j], true
		}
	}
	m.sentPooled.Add(1)
	return &m.pooled[(m.pi.Add(1)-1)%uint64(len(m.pooled))], true
}

// splitmix is SplitMix64's finalizer: a well-spread hash of x.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// garbageRequests are the soak's garbage checks, each with the denial a
// correct service gives it: ambiguous paths (400), undecodable or
// truncated tokens (401), and oversized header blocks without a
// credential (401: about 90 KiB, as much as Envoy sends, with 2 000
// x-agentos-* headers for the service to remove). They are built with
// envoy.NewCheckRequest, the one builder of what Envoy sends, from the
// request of proto/envoy-fixtures/http1-get-query.json (curl through a
// front proxy) with the path, token or headers changed.
func garbageRequests() ([]wireRequest, error) {
	base := envoy.RequestSpec{
		Method: "GET", Path: "/agents/research-bot?include=tools&limit=5", Host: "agentos.example.com",
		ClientAddr: "203.0.113.7",
		Headers: []authz.Header{
			{Name: "accept", Value: "application/json"},
			{Name: "user-agent", Value: "curl/8.5.0"},
			{Name: "x-forwarded-for", Value: "203.0.113.7"},
			{Name: "x-envoy-external-address", Value: "203.0.113.7"},
		},
		Token: "eyJhbGciOiJIUzI1NiJ9.e30.c2ln",
	}
	var out []wireRequest
	add := func(status int32, spec envoy.RequestSpec) error {
		body, err := proto.Marshal(envoy.NewCheckRequest(spec))
		if err != nil {
			return err
		}
		out = append(out, wireRequest{body: body, status: status})
		return nil
	}
	var errs []error
	for _, p := range []string{"/agents/../admin", "/agents//research-bot", "/agents/%2e%2e/x", "/agents/a%2Fb", "/agents/%zz", "agents", "/agents\\x"} {
		spec := base
		spec.Path = p
		errs = append(errs, add(400, spec))
	}
	for _, tok := range []string{"!!!not-a-token!!!", "eyJhbGciOiJSUzI1NiJ9", "a.b", "eyJ%%%.e30.x", strings.Repeat("A", 9000)} {
		spec := base
		spec.Token = tok
		errs = append(errs, add(401, spec))
	}
	oversized := base
	oversized.Token = ""
	oversized.Headers = append(slices.Clip(base.Headers), authz.Header{Name: "x-padding", Value: strings.Repeat("p", 60<<10)})
	for i := range 2000 {
		oversized.Headers = append(oversized.Headers, authz.Header{Name: "x-agentos-foo-" + strconv.Itoa(i), Value: "spoofed"})
	}
	errs = append(errs, add(401, oversized))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// runSoak starts the service, runs the load and the sampler, and judges.
func runSoak(ctx context.Context, f *soakFlags, stdout, log io.Writer) (*soakReport, error) {
	bin, err := filepath.Abs(f.bin)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		return nil, fmt.Errorf("--bin %s: not a file (run make build)", f.bin)
	}
	dir, err := os.MkdirTemp("", "authz-bench-soak-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	keys, cfgPath, err := writeServiceConfig(dir)
	if err != nil {
		return nil, err
	}
	claims := claimSpec{Audience: benchOSID, TTL: f.duration + time.Hour}
	mixed, err := signersFor("mixed", keys)
	if err != nil {
		return nil, err
	}
	hs, err := signersFor("HS256", keys)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "minting %d pooled tokens (HS256 and RS256) and their invalid replays...\n", f.tokens)
	pooled, err := buildPool(ctx, poolSpec{Signers: mixed, Count: f.tokens, Mix: 0.8, Invalid: 0.06, InvalidKinds: invalidKinds(),
		Fixtures: benchFixtures(), Claims: claims, Seed: f.seed})
	if err != nil {
		return nil, err
	}
	mix := &soakMix{pooled: pooled, freshShare: f.fresh, garbShare: f.garbage, seed: f.seed}
	if n := int(math.Ceil(f.rate*f.duration.Seconds()*f.fresh*1.1)) + 100; f.fresh > 0 {
		fmt.Fprintf(log, "minting %d fresh HS256 tokens...\n", n)
		if mix.fresh, err = buildPool(ctx, poolSpec{Signers: hs, Count: n, Mix: 0.8, Fixtures: benchFixtures(), Claims: claims, Seed: f.seed + 1}); err != nil {
			return nil, err
		}
	}
	if f.garbage > 0 {
		if mix.garbage, err = garbageRequests(); err != nil {
			return nil, err
		}
	}

	svc, err := startService(ctx, bin, cfgPath, pinning{}, f.startTimeout)
	if err != nil {
		return nil, err
	}
	defer svc.stop(log)

	rep := &soakReport{}
	first, err := readMetrics(ctx, svc.admin)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "soak: %s (pid %d), %.0f checks/s for %v: %.0f%% fresh, %.0f%% garbage, the rest %d pooled tokens + 6%% replayed invalid\n",
		f.bin, svc.pid, f.rate, f.duration, 100*f.fresh, 100*f.garbage, f.tokens)
	fmt.Fprintf(stdout, "%8s %10s %11s %10s\n", "t", "RSS MiB", "goroutines", "sent")
	fmt.Fprintf(stdout, "%8s %10.1f %11.0f %10d\n", "start", first.RSS/(1<<20), first.Goroutines, 0)

	loadCtx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	type loadDone struct {
		res *Result
		err error
	}
	done := make(chan loadDone, 1)
	opt := loadOptions{Target: svc.addr, Conns: f.conns, Concurrency: f.concurrency, Duration: f.duration, Timeout: f.timeout, Rate: f.rate, ServerCore: -1}
	wl := &workload{reqs: pooled, next: mix.next}
	start := time.Now()
	go func() {
		res, err := runLoad(loadCtx, opt, wl)
		done <- loadDone{res, err}
	}()
	tick := time.NewTicker(f.sample)
	defer tick.Stop()
	var out loadDone
wait:
	for {
		select {
		case out = <-done:
			break wait
		case <-tick.C:
			s, err := readMetrics(ctx, svc.admin)
			if err != nil {
				cancelLoad()
				<-done
				return nil, err
			}
			s.At = time.Since(start).Round(time.Second)
			s.Sent = mix.pi.Load() + mix.fi.Load() + mix.gi.Load()
			rep.Samples = append(rep.Samples, s)
			fmt.Fprintf(stdout, "%8v %10.1f %11.0f %10d\n", s.At, s.RSS/(1<<20), s.Goroutines, s.Sent)
		}
	}
	if out.err != nil {
		return nil, out.err
	}
	rep.Result = out.res
	rep.Sent = map[string]int64{"pooled": mix.sentPooled.Load(), "fresh": mix.sentFresh.Load(), "garbage": mix.sentGarbage.Load()}
	select {
	case <-svc.exited:
		rep.Failures = append(rep.Failures, fmt.Sprintf("the service exited during the soak (%v)", svc.waitErr))
	default:
	}
	judgeSoak(f, rep)
	return rep, nil
}

// judgeSoak lists what fails the soak: transport errors, wrong answers,
// and RSS or goroutines whose last third's max exceeds the first third's
// max by more than the margins.
func judgeSoak(f *soakFlags, rep *soakReport) {
	r := rep.Result
	if r != nil {
		if r.Errors > 0 {
			rep.Failures = append(rep.Failures, fmt.Sprintf("%d calls failed at the transport (first: %s)", r.Errors, r.FirstError))
		}
		if r.Unexpected > 0 {
			rep.Failures = append(rep.Failures, fmt.Sprintf("%d answers differ from what the requests call for (%s)", r.Unexpected, outcomeLine(r)))
		}
		if r.Requests == 0 {
			rep.Failures = append(rep.Failures, "no check answered")
		}
	}
	n := len(rep.Samples)
	if n < 3 {
		rep.Failures = append(rep.Failures, fmt.Sprintf("%d samples, want at least 3 to judge growth", n))
		return
	}
	third := n / 3
	firstRSS, lastRSS := maxOf(rep.Samples[:third], rss), maxOf(rep.Samples[n-third:], rss)
	if lim := firstRSS*(1+f.rssMargin) + f.rssSlack*(1<<20); lastRSS > lim {
		rep.Failures = append(rep.Failures, fmt.Sprintf("RSS grows: last third's max %.1f MiB > %.1f MiB (first third's max %.1f MiB + %.0f%% + %.0f MiB)",
			lastRSS/(1<<20), lim/(1<<20), firstRSS/(1<<20), 100*f.rssMargin, f.rssSlack))
	}
	firstG, lastG := maxOf(rep.Samples[:third], gor), maxOf(rep.Samples[n-third:], gor)
	if lim := firstG*(1+f.gorMargin) + float64(f.gorSlack); lastG > lim {
		rep.Failures = append(rep.Failures, fmt.Sprintf("goroutines grow: last third's max %.0f > %.0f (first third's max %.0f + %.0f%% + %d)",
			lastG, lim, firstG, 100*f.gorMargin, f.gorSlack))
	}
}

func rss(s soakSample) float64 { return s.RSS }
func gor(s soakSample) float64 { return s.Goroutines }

func maxOf(ss []soakSample, v func(soakSample) float64) float64 {
	m := 0.0
	for _, s := range ss {
		m = max(m, v(s))
	}
	return m
}

func printSoak(w io.Writer, f *soakFlags, rep *soakReport) {
	r := rep.Result
	fmt.Fprintf(w, "\nsoak summary: %d checks in %.0f s (%.1f/s of %.0f scheduled; %d late), sent %d pooled, %d fresh, %d garbage\n",
		r.Requests, r.Seconds, r.RPS, f.rate, r.Late, rep.Sent["pooled"], rep.Sent["fresh"], rep.Sent["garbage"])
	fmt.Fprintf(w, "outcomes   %s\n", outcomeLine(r))
	fmt.Fprintf(w, "latency    p50 %.1f µs   p99 %.1f µs   max %.1f µs\n", r.Latency.P50, r.Latency.P99, r.Latency.Max)
	fmt.Fprintf(w, "max RSS %.1f MiB, max goroutines %.0f over %d samples; transport errors %d\n",
		maxOf(rep.Samples, rss)/(1<<20), maxOf(rep.Samples, gor), len(rep.Samples), r.Errors)
	if len(rep.Failures) == 0 {
		fmt.Fprintf(w, "PASS: no transport error, every answer as expected, RSS and goroutines bounded (last third within +%.0f%% + %.0f MiB and +%.0f%% + %d of the first)\n",
			100*f.rssMargin, f.rssSlack, 100*f.gorMargin, f.gorSlack)
	}
	for _, p := range rep.Failures {
		fmt.Fprintf(w, "FAIL: %s\n", p)
	}
}

// readMetrics reads process_resident_memory_bytes and go_goroutines from
// the service's /metrics (Prometheus text format).
func readMetrics(ctx context.Context, admin string) (soakSample, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		return soakSample{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return soakSample{}, fmt.Errorf("reading the service's /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return soakSample{}, fmt.Errorf("the service's /metrics answered %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (soakSample, error) {
	var s soakSample
	var haveRSS, haveG bool
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		switch name {
		case "process_resident_memory_bytes":
			s.RSS, haveRSS = v, err == nil
		case "go_goroutines":
			s.Goroutines, haveG = v, err == nil
		}
	}
	if err := sc.Err(); err != nil {
		return soakSample{}, err
	}
	if !haveRSS || !haveG {
		return soakSample{}, errors.New("the service's /metrics has no process_resident_memory_bytes or go_goroutines")
	}
	return s, nil
}
