package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
)

// scenario is one workload of the comparison.
type scenario struct {
	Name  string
	Alg   string // "HS256" or "RS256"
	Fresh bool
}

// scenarios are the workloads the budget is judged on (README, Performance).
func scenarios() []scenario {
	return []scenario{
		{Name: "pooled-hs256", Alg: "HS256"},
		{Name: "pooled-rs256", Alg: "RS256"},
		{Name: "fresh-rs256", Alg: "RS256", Fresh: true},
	}
}

// The budget: with pooled tokens, the service against the no-op server.
const (
	targetCPU   = 1.25 // server CPU per check: service <= 1.25x no-op
	targetRPS   = 0.85 // rps: service >= 85% of no-op
	targetP99   = 2.0  // p99: service <= 2x no-op
	targetFresh = 1.10 // fresh RS256: extra CPU over a pooled token <= 1.1x a bare verification
)

type compareFlags struct {
	bin          string
	load         loadOptions
	tokens       int
	freshPool    int
	mix          float64
	invalid      float64
	only         string
	serverCPU    int
	loadCPU      int
	startTimeout time.Duration
	seed         uint64
	json         bool
}

func parseCompareFlags(args []string, stderr io.Writer) (*compareFlags, error) {
	f := &compareFlags{}
	fs := flag.NewFlagSet("authz-bench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.bin, "bin", "bin/agentos-authz", "service binary (make build)")
	fs.IntVar(&f.load.Conns, "conns", 2, "gRPC connections")
	fs.IntVar(&f.load.Concurrency, "concurrency", 64, "requests in flight (closed loop)")
	fs.DurationVar(&f.load.Duration, "duration", 10*time.Second, "measured time of each run")
	fs.DurationVar(&f.load.Warmup, "warmup", 2*time.Second, "warm-up of each run, not measured")
	fs.DurationVar(&f.load.Timeout, "timeout", 5*time.Second, "bound of one call and of connecting")
	fs.IntVar(&f.tokens, "tokens", 1000, "pool of distinct tokens of the pooled scenarios")
	fs.IntVar(&f.freshPool, "fresh-pool", 30000, "tokens minted ahead for the fresh scenario; its run ends early when they run out")
	fs.Float64Var(&f.mix, "mix", 0.8, "share of requests allowed; the rest are denied 403, or 401 (--invalid)")
	fs.Float64Var(&f.invalid, "invalid", 0.06, "pooled scenarios: share of requests carrying one of 8 invalid tokens (expired, wrong audience, bad signature, alg none), replayed, denied 401")
	fs.StringVar(&f.only, "scenarios", "pooled-hs256,pooled-rs256,fresh-rs256", "comma-separated scenarios to run")
	fs.IntVar(&f.serverCPU, "server-cpu", 0, "CPU the servers are pinned to")
	fs.IntVar(&f.loadCPU, "load-cpu", 1, "CPU the load generator is pinned to")
	fs.DurationVar(&f.startTimeout, "start-timeout", 15*time.Second, "bound of a server's start")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the scope choice and request order")
	fs.BoolVar(&f.json, "json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: authz-bench compare [--bin bin/agentos-authz] [flags]\n\n"+
			"Starts the service (temporary HS256 and RS256 keys, loopback ports) and a no-op Check server,\n"+
			"both pinned to --server-cpu, runs the same load against each from --load-cpu, and prints them\n"+
			"side by side with the budget's ratios. Stops by itself.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	f.load.Target = "127.0.0.1:0" // set per server; validate() wants one
	errs := []error{f.load.validate()}
	if f.tokens < 1 {
		errs = append(errs, fmt.Errorf("--tokens %d: want at least 1", f.tokens))
	}
	if f.freshPool < 1 {
		errs = append(errs, fmt.Errorf("--fresh-pool %d: want at least 1", f.freshPool))
	}
	if f.mix < 0 || f.mix > 1 || f.mix != f.mix {
		errs = append(errs, fmt.Errorf("--mix %v: want a share between 0 and 1", f.mix))
	}
	if f.invalid < 0 || f.invalid >= 1 || f.invalid != f.invalid || f.mix+f.invalid > 1+1e-9 {
		errs = append(errs, fmt.Errorf("--invalid %v: want a share from 0, below 1, with --mix + --invalid at most 1", f.invalid))
	}
	if f.startTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--start-timeout %v: want more than 0", f.startTimeout))
	}
	if _, err := pickScenarios(f.only); err != nil {
		errs = append(errs, err)
	}
	return f, errors.Join(errs...)
}

func pickScenarios(list string) ([]scenario, error) {
	var out []scenario
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, s := range scenarios() {
			if s.Name == name {
				out = append(out, s)
				found = true
			}
		}
		if !found {
			var names []string
			for _, s := range scenarios() {
				names = append(names, s.Name)
			}
			return nil, fmt.Errorf("--scenarios: unknown %q (have %s)", name, strings.Join(names, ", "))
		}
	}
	return out, nil
}

// check is one ratio judged against the budget.
type check struct {
	Metric string  `json:"metric"`
	Ratio  float64 `json:"ratio"`
	Target string  `json:"target"` // "<= 1.25"
	Pass   bool    `json:"pass"`
}

type scenarioReport struct {
	Name     string  `json:"name"`
	Workload string  `json:"workload"`
	Service  *Result `json:"service"`
	Noop     *Result `json:"noop"`
	Checks   []check `json:"checks,omitempty"`
}

type serverInfo struct {
	Bin string `json:"bin"`
	PID int    `json:"pid"`
}

// compareReport is the outcome of a comparison.
type compareReport struct {
	Service     serverInfo `json:"service"`
	Noop        serverInfo `json:"noop"`
	Pinning     string     `json:"pinning"`
	Concurrency int        `json:"concurrency"`
	Conns       int        `json:"conns"`
	Warmup      float64    `json:"warmup_s"`
	Duration    float64    `json:"duration_s"`
	Mix         float64    `json:"mix"`
	// Invalid is the pooled scenarios' share of replayed invalid tokens.
	Invalid   float64          `json:"invalid"`
	Scenarios []scenarioReport `json:"scenarios"`
	// The fresh-token budget, from the fresh and pooled RS256 runs.
	BareVerify    float64 `json:"bare_rs256_verify_us,omitempty"`
	FreshExtra    float64 `json:"fresh_minus_pooled_cpu_us_per_check,omitempty"`
	FreshOverNoop float64 `json:"fresh_minus_noop_cpu_us_per_check,omitempty"`
	FreshCheck    *check  `json:"fresh_check,omitempty"`
	// The service's memory after every run.
	ServiceRSS     uint64 `json:"service_rss_bytes"`
	ServicePeakRSS uint64 `json:"service_peak_rss_bytes"`
	DistinctTokens int    `json:"distinct_tokens"`
	// Problems make the figures meaningless (errors, wrong outcomes).
	Problems []string `json:"problems,omitempty"`
	// Notes qualify them (a saturated load generator).
	Notes []string `json:"notes,omitempty"`
}

func cmdCompare(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseCompareFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "authz-bench compare: %v\n", err)
		return 2
	}
	rep, err := compare(ctx, f, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "authz-bench compare: %v\n", err)
		return 1
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "authz-bench compare: %v\n", err)
			return 1
		}
	} else {
		printCompare(stdout, rep)
	}
	if len(rep.Problems) > 0 {
		return 1
	}
	return 0
}

// compare runs the whole comparison; progress goes to log.
func compare(ctx context.Context, f *compareFlags, log io.Writer) (*compareReport, error) {
	scens, err := pickScenarios(f.only)
	if err != nil {
		return nil, err
	}
	bin, err := filepath.Abs(f.bin)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		return nil, fmt.Errorf("--bin %s: not a file (run make build)", f.bin)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locating authz-bench for the no-op server: %w", err)
	}
	// Everything is bounded: servers' starts, each run with its warm-up and
	// call timeouts, and a generous allowance for minting.
	perRun := f.load.Warmup + f.load.Duration + 2*f.load.Timeout
	ctx, cancel := context.WithTimeout(ctx, 2*f.startTimeout+time.Duration(2*len(scens))*perRun+15*time.Minute)
	defer cancel()

	dir, err := os.MkdirTemp("", "authz-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	keys, cfgPath, err := writeServiceConfig(dir)
	if err != nil {
		return nil, err
	}

	// Mint before pinning: every CPU signs.
	loads := make([]*workload, len(scens))
	labels := make([]string, len(scens))
	distinct := 0
	// The service verifies the audience (serviceConfig), so that the
	// wrong-audience tokens are refused.
	claims := claimSpec{Audience: benchOSID, TTL: tokenTTL(f.load) + 15*time.Minute}
	for i, s := range scens {
		sg, err := signersFor(s.Alg, keys)
		if err != nil {
			return nil, err
		}
		n := f.tokens
		if s.Fresh {
			n = f.freshPool
		}
		fmt.Fprintf(log, "minting %d %s tokens for %s...\n", n, s.Alg, s.Name)
		spec := poolSpec{
			Signers: sg, Count: n, Mix: f.mix, Fixtures: benchFixtures(), Claims: claims, Seed: f.seed + uint64(i),
		}
		if !s.Fresh {
			// The fresh scenario measures what a new valid token costs
			// (targetFresh): every one of its requests is a new token.
			spec.Invalid, spec.InvalidKinds = f.invalid, invalidKinds()
		}
		reqs, err := buildPool(ctx, spec)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		loads[i] = &workload{reqs: reqs, fresh: s.Fresh}
		labels[i] = fmt.Sprintf("%s, %s", s.Alg, poolLabel(s.Fresh, n))
		if spec.Invalid > 0 {
			labels[i] += fmt.Sprintf(" + %.0f%% replayed invalid", 100*spec.Invalid)
		}
		distinct += n
	}

	pin := pinPlan(f.serverCPU, f.loadCPU)
	svc, err := startService(ctx, bin, cfgPath, pin, f.startTimeout)
	if err != nil {
		return nil, err
	}
	defer svc.stop(log)
	noop, err := startNoopChild(ctx, self, pin, f.startTimeout)
	if err != nil {
		return nil, err
	}
	defer noop.stop(log)
	if pin.enabled {
		if err := pinProcess(os.Getpid(), pin.loadCPU); err != nil {
			return nil, err
		}
	}

	rep := &compareReport{
		Service:     serverInfo{Bin: f.bin, PID: svc.pid},
		Noop:        serverInfo{Bin: "authz-bench noop", PID: noop.pid},
		Pinning:     pin.describe(),
		Concurrency: f.load.Concurrency,
		Conns:       f.load.Conns,
		Warmup:      f.load.Warmup.Seconds(),
		Duration:    f.load.Duration.Seconds(),
		Mix:         f.mix,
		Invalid:     f.invalid,
	}
	for i, s := range scens {
		sr := scenarioReport{Name: s.Name, Workload: labels[i]}
		for _, target := range []struct {
			srv *child
			out **Result
		}{{svc, &sr.Service}, {noop, &sr.Noop}} {
			opt := f.load
			opt.Target = target.srv.addr
			opt.ServerPID = target.srv.pid
			opt.ServerCore = -1
			if pin.enabled {
				opt.ServerCore = pin.serverCPU
			}
			fmt.Fprintf(log, "%s against %s: warm-up %v, measuring %v...\n", s.Name, target.srv.name, opt.Warmup, opt.Duration)
			// A fresh workload starts from its first token on each server.
			wl := &workload{reqs: loads[i].reqs, fresh: loads[i].fresh}
			res, err := runLoad(ctx, opt, wl)
			if err != nil {
				return nil, fmt.Errorf("%s against %s: %w", s.Name, target.srv.name, err)
			}
			*target.out = res
		}
		if !s.Fresh {
			sr.Checks = budgetChecks(sr.Service, sr.Noop)
		}
		rep.Scenarios = append(rep.Scenarios, sr)
	}
	mem, err := processMem(svc.pid)
	if err != nil {
		return nil, err
	}
	rep.ServiceRSS, rep.ServicePeakRSS, rep.DistinctTokens = mem.RSS, mem.Peak, distinct

	if err := freshBudget(rep, keys); err != nil {
		return nil, err
	}
	judge(rep)
	return rep, nil
}

// budgetChecks are the targets for a pooled scenario.
func budgetChecks(svc, noop *Result) []check {
	var out []check
	if noop.ServerCPU > 0 {
		r := svc.ServerCPU / noop.ServerCPU
		out = append(out, check{Metric: "server CPU per check", Ratio: r, Target: fmt.Sprintf("<= %.2f", targetCPU), Pass: r <= targetCPU})
	}
	if noop.RPS > 0 {
		r := svc.RPS / noop.RPS
		out = append(out, check{Metric: "rps", Ratio: r, Target: fmt.Sprintf(">= %.2f", targetRPS), Pass: r >= targetRPS})
	}
	if noop.Latency.P99 > 0 {
		r := svc.Latency.P99 / noop.Latency.P99
		out = append(out, check{Metric: "p99", Ratio: r, Target: fmt.Sprintf("<= %.2f", targetP99), Pass: r <= targetP99})
	}
	return out
}

// freshBudget fills the fresh-token figures when the fresh RS256 scenario
// ran. The budget (README, Performance) holds a fresh RS256 token to within 10% of one
// bare signature verification, timed here (SHA-256 of the signing input +
// RSA verify, in CPU time). End to end, the service's work for a fresh
// token is its server CPU per check beyond the no-op server's for the same
// requests: that is what is judged. Fresh minus pooled RS256 (the cost of
// a new token over a known one) is reported beside it.
func freshBudget(rep *compareReport, keys signingKeys) error {
	var pooledRS, fresh *scenarioReport
	for i := range rep.Scenarios {
		switch s := &rep.Scenarios[i]; s.Name {
		case "pooled-rs256":
			pooledRS = s
		case "fresh-rs256":
			fresh = s
		}
	}
	if fresh == nil || keys.rsa == nil {
		return nil
	}
	bare, err := bareRS256Verify(keys.rsa)
	if err != nil {
		return err
	}
	rep.BareVerify = micros(bare)
	rep.FreshOverNoop = fresh.Service.ServerCPU - fresh.Noop.ServerCPU
	if pooledRS != nil {
		rep.FreshExtra = fresh.Service.ServerCPU - pooledRS.Service.ServerCPU
	}
	r := rep.FreshOverNoop / rep.BareVerify
	rep.FreshCheck = &check{
		Metric: "(fresh - no-op) server CPU / bare verify",
		Ratio:  r,
		Target: fmt.Sprintf("<= %.2f", targetFresh),
		Pass:   r <= targetFresh,
	}
	return nil
}

// bareRS256Verify times one RS256 signature verification of a real token,
// in CPU time of the calling thread (so that other processes sharing the
// CPU do not inflate it).
func bareRS256Verify(key *rsa.PrivateKey) (time.Duration, error) {
	tok, err := mintToken(signer{alg: jwa.RS256, key: key}, 0, []string{"agents:read"}, claimSpec{TTL: time.Hour}, time.Now())
	if err != nil {
		return 0, err
	}
	dot := strings.LastIndexByte(tok, '.')
	input := []byte(tok[:dot])
	sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	if err != nil {
		return 0, fmt.Errorf("bare verify: %w", err)
	}
	verify := func() error {
		h := sha256.Sum256(input)
		return rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, h[:], sig)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for range 50 { // warm caches
		if err := verify(); err != nil {
			return 0, fmt.Errorf("bare verify: %w", err)
		}
	}
	start, err := threadCPU()
	if err != nil {
		return 0, err
	}
	const budget = 300 * time.Millisecond
	for n := 1; ; n++ {
		if err := verify(); err != nil {
			return 0, fmt.Errorf("bare verify: %w", err)
		}
		if n%64 != 0 {
			continue
		}
		now, err := threadCPU()
		if err != nil {
			return 0, err
		}
		if used := now - start; used >= budget {
			return used / time.Duration(n), nil
		}
	}
}

// judge lists what makes the figures meaningless, and what qualifies them.
func judge(rep *compareReport) {
	for _, s := range rep.Scenarios {
		for _, r := range []struct {
			who string
			res *Result
		}{{"service", s.Service}, {"no-op", s.Noop}} {
			if r.res.Requests == 0 {
				rep.Problems = append(rep.Problems, fmt.Sprintf("%s, %s: no request answered", s.Name, r.who))
			}
			if r.res.Errors > 0 {
				rep.Problems = append(rep.Problems, fmt.Sprintf("%s, %s: %d calls failed (first: %s)", s.Name, r.who, r.res.Errors, r.res.FirstError))
			}
		}
		if s.Service.Unexpected > 0 {
			rep.Problems = append(rep.Problems, fmt.Sprintf(
				"%s, service: %d answers differ from what the tokens' scopes call for (%s)",
				s.Name, s.Service.Unexpected, outcomeLine(s.Service)))
		}
		for _, r := range []struct {
			who string
			res *Result
		}{{"service", s.Service}, {"no-op server", s.Noop}} {
			if r.res.OtherOnServerCore > 0.05 {
				rep.Notes = append(rep.Notes, fmt.Sprintf(
					"%s against the %s: other work kept the servers' CPU busy %.0f%% of the time: the figures are disturbed, rerun on a quiet machine",
					s.Name, r.who, 100*r.res.OtherOnServerCore))
			}
		}
		if s.Noop.LoadUtil > 0.9 {
			rep.Notes = append(rep.Notes, fmt.Sprintf(
				"%s: the load generator used %.2f cores against the no-op server: there the client, not the server, may set the pace, and the rps ratio then overstates the service",
				s.Name, s.Noop.LoadUtil))
		}
		if s.Service.Exhausted {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: fresh tokens ran out after %.2f s (raise --fresh-pool for longer)", s.Name, s.Service.Seconds))
		}
	}
}

// benchOSID is the service's os_id, the audience it verifies.
const benchOSID = "authz-bench"

// writeServiceConfig generates an HMAC secret and an RSA key pair and
// writes the service's configuration (mode 0600) into dir. The keys are
// for this run only; dir is removed afterwards.
func writeServiceConfig(dir string) (signingKeys, string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return signingKeys{}, "", err
	}
	secret := hex.EncodeToString(raw[:])
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return signingKeys{}, "", err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return signingKeys{}, "", err
	}
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	path := filepath.Join(dir, "authz.yaml")
	if err := os.WriteFile(path, serviceConfig(secret, pub), 0o600); err != nil {
		return signingKeys{}, "", err
	}
	return signingKeys{hmac: []byte(secret), rsa: key}, path, nil
}

// serviceConfig is the YAML configuration (docs/CONTRACT.md §4) the service runs
// with: both keys, both algorithms, everything else default (the AgentOS
// route table, authorization on).
func serviceConfig(hmacSecret string, rsaPublicPEM []byte) []byte {
	var b strings.Builder
	b.WriteString("# authz-bench compare: keys generated for one run\n")
	fmt.Fprintf(&b, "os_id: %s\n", benchOSID)
	b.WriteString("jwt:\n")
	b.WriteString("  verify_audience: true\n")
	b.WriteString("  algorithms: [HS256, RS256]\n")
	b.WriteString("  verification_keys:\n")
	fmt.Fprintf(&b, "    - %q\n", hmacSecret) // hex: a plain double-quoted YAML string
	b.WriteString("    - |\n")
	for line := range strings.SplitSeq(strings.TrimRight(string(rsaPublicPEM), "\n"), "\n") {
		fmt.Fprintf(&b, "      %s\n", line)
	}
	return []byte(b.String())
}
