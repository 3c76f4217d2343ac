// Command authz-bench measures the ext_authz gRPC path of agentos-authz.
//
//	authz-bench [load] --target 127.0.0.1:9191 --key hs.secret --alg HS256 ...
//	authz-bench noop --addr 127.0.0.1:0
//	authz-bench compare --bin bin/agentos-authz
//
// load is a closed-loop client of envoy.service.auth.v3.Authorization/Check:
// --concurrency callers over --conns connections, each sending its next
// request as soon as the answer arrives, for --warmup (discarded) then
// --duration. Requests are the Envoy fixtures of proto/envoy-fixtures for
// AgentOS routes, each carrying a token of a pool minted and encoded before
// the run, so the client spends its CPU on gRPC alone. It prints rps,
// latency percentiles, outcomes and, with --server-pid, the server's CPU
// time per check.
//
// noop serves a Check that answers OK at once: the gRPC path without a
// decision, the baseline. compare starts the real service and the no-op
// server pinned to one CPU, runs the same load against each from another
// CPU and prints them side by side with the ratios the performance budget
// (README, Performance) sets.
//
// It talks to the service only through the contract (docs/CONTRACT.md §2, §5):
// the Check RPC, the serve command and its configuration file. It never
// prints a token, key or secret.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a subcommand and returns the exit code: 0 done, 1 the run
// failed, 2 bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "load"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "load":
		return cmdLoad(ctx, args, stdout, stderr)
	case "noop":
		return cmdNoop(ctx, args, stdout, stderr)
	case "compare":
		return cmdCompare(ctx, args, stdout, stderr)
	case "soak":
		return cmdSoak(ctx, args, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "authz-bench: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

const usage = `usage:
  authz-bench [load] [flags]   closed-loop ext_authz load against --target
  authz-bench noop [flags]     no-op Check server (the baseline)
  authz-bench compare [flags]  service vs no-op, side by side
  authz-bench soak [flags]     the service at a fixed rate for minutes: RSS, goroutines, errors
  authz-bench <command> -h     flags of a command
`

// exitUsage maps a flag parsing error to an exit code (-h is not an error).
func exitUsage(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string { return strings.Join(*s, ",") }

func (s *stringsFlag) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// loadFlags are the flags of the load command.
type loadFlags struct {
	load      loadOptions
	tokens    int
	fresh     bool
	freshPool int
	alg       string
	keys      stringsFlag
	mix       float64
	invalid   float64
	kinds     string
	iss, aud  string
	seed      uint64
	cpu       int
	json      bool
}

func parseLoadFlags(args []string, stderr io.Writer) (*loadFlags, error) {
	f := &loadFlags{}
	fs := flag.NewFlagSet("authz-bench load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.load.Target, "target", "127.0.0.1:9191", "ext_authz gRPC address")
	fs.IntVar(&f.load.Conns, "conns", 2, "gRPC connections")
	fs.IntVar(&f.load.Concurrency, "concurrency", 64, "requests in flight (closed loop)")
	fs.DurationVar(&f.load.Duration, "duration", 10*time.Second, "measured time")
	fs.DurationVar(&f.load.Warmup, "warmup", 2*time.Second, "warm-up time, not measured")
	fs.DurationVar(&f.load.Timeout, "timeout", 5*time.Second, "bound of one call and of connecting")
	fs.Float64Var(&f.load.Rate, "rate", 0, "open loop: send this many checks a second on a fixed schedule, at most --concurrency in flight (0: closed loop)")
	fs.IntVar(&f.load.ServerPID, "server-pid", 0, "server process id: report its CPU time per check (from /proc/PID/stat)")
	fs.IntVar(&f.load.ServerCore, "server-cpu", -1, "with --server-pid, the CPU the server is pinned to: report how busy other work kept it")
	fs.IntVar(&f.tokens, "tokens", 1000, "pool of distinct tokens, sent round-robin")
	fs.BoolVar(&f.fresh, "fresh", false, "a token never sent before on every request (pre-minted, see --fresh-pool)")
	fs.IntVar(&f.freshPool, "fresh-pool", 30000, "with --fresh: tokens minted ahead; the run ends early when they run out (a fifth is for the warm-up)")
	fs.StringVar(&f.alg, "alg", "HS256", "token algorithm: HS256, RS256 or mixed (half each)")
	fs.Var(&f.keys, "key", "signing key file, the server's key: an HMAC secret or a PEM RSA private key (repeat for --alg mixed)")
	fs.Float64Var(&f.mix, "mix", 0.8, "share of requests whose token has the route's scope (allowed); the rest are denied 403, or 401 (--invalid)")
	fs.Float64Var(&f.invalid, "invalid", 0.06, "share of requests carrying one of a few invalid tokens, replayed (denied 401); 0 for none")
	fs.StringVar(&f.kinds, "invalid-kinds", "", "comma-separated invalid tokens to replay: expired, audience (needs --aud and a server verifying it), signature, algorithm; default all, audience only with --aud")
	fs.StringVar(&f.iss, "iss", "", "iss claim of the tokens (the server's jwt.issuer), empty for none")
	fs.StringVar(&f.aud, "aud", "", "aud claim of the tokens, empty for none")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the scope choice and request order")
	fs.IntVar(&f.cpu, "cpu", -1, "pin this process to CPU N (-1: no pinning)")
	fs.BoolVar(&f.json, "json", false, "print the result as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: authz-bench [load] --target ADDR --key FILE [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var errs []error
	if f.tokens < 1 {
		errs = append(errs, fmt.Errorf("--tokens %d: want at least 1", f.tokens))
	}
	if f.fresh && f.freshPool < 1 {
		errs = append(errs, fmt.Errorf("--fresh-pool %d: want at least 1", f.freshPool))
	}
	if f.mix < 0 || f.mix > 1 || f.mix != f.mix {
		errs = append(errs, fmt.Errorf("--mix %v: want a share between 0 and 1", f.mix))
	}
	if f.invalid < 0 || f.invalid >= 1 || f.invalid != f.invalid || f.mix+f.invalid > 1+1e-9 {
		errs = append(errs, fmt.Errorf("--invalid %v: want a share from 0, below 1, with --mix + --invalid at most 1", f.invalid))
	}
	if _, err := parseInvalidKinds(f.kinds, f.aud); err != nil {
		errs = append(errs, err)
	}
	if len(f.keys) == 0 {
		errs = append(errs, errors.New("--key: required (the key the server verifies with)"))
	}
	if f.cpu >= 0 && !cpuAllowed(f.cpu) {
		errs = append(errs, fmt.Errorf("--cpu %d: not a CPU this process may use", f.cpu))
	}
	errs = append(errs, f.load.validate())
	return f, errors.Join(errs...)
}

func cmdLoad(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseLoadFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "authz-bench: %v\n", err)
		return 2
	}
	keys, err := readSigningKeys(f.keys)
	if err != nil {
		fmt.Fprintf(stderr, "authz-bench: %v\n", err)
		return 2
	}
	signers, err := signersFor(f.alg, keys)
	if err != nil {
		fmt.Fprintf(stderr, "authz-bench: %v\n", err)
		return 2
	}
	count := f.tokens
	if f.fresh {
		count = f.freshPool
	}
	kinds, _ := parseInvalidKinds(f.kinds, f.aud)
	spec := poolSpec{
		Signers:      signers,
		Count:        count,
		Mix:          f.mix,
		Fixtures:     benchFixtures(),
		Claims:       claimSpec{Issuer: f.iss, Audience: f.aud, TTL: tokenTTL(f.load)},
		Seed:         f.seed,
		Invalid:      f.invalid,
		InvalidKinds: kinds,
	}
	fmt.Fprintf(stderr, "minting %d %s tokens...\n", count, f.alg)
	reqs, err := buildPool(ctx, spec)
	if err != nil {
		fmt.Fprintf(stderr, "authz-bench: %v\n", err)
		return 1
	}
	if f.cpu >= 0 {
		if err := pinProcess(os.Getpid(), f.cpu); err != nil {
			fmt.Fprintf(stderr, "authz-bench: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "load: %d in flight over %d connections to %s, warm-up %v, measuring %v\n",
		f.load.Concurrency, f.load.Conns, f.load.Target, f.load.Warmup, f.load.Duration)
	res, err := runLoad(ctx, f.load, &workload{reqs: reqs, fresh: f.fresh})
	if err != nil {
		fmt.Fprintf(stderr, "authz-bench: %v\n", err)
		return 1
	}
	label := fmt.Sprintf("%s, %s", f.alg, poolLabel(f.fresh, count))
	if f.invalid > 0 {
		label += fmt.Sprintf(" + %.0f%% replayed invalid (%s)", 100*f.invalid, strings.Join(kinds, ", "))
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Workload string `json:"workload"`
			*Result
		}{label, res}); err != nil {
			fmt.Fprintf(stderr, "authz-bench: %v\n", err)
			return 1
		}
		return 0
	}
	printResult(stdout, label, res)
	return 0
}

// tokenTTL outlives the run with a wide margin, so that no token expires
// while it is sent, yet the tokens are short-lived.
func tokenTTL(o loadOptions) time.Duration {
	return max(time.Hour, 4*(o.Warmup+o.Duration+o.Timeout))
}

func poolLabel(fresh bool, n int) string {
	if fresh {
		return fmt.Sprintf("fresh token per request (%d minted)", n)
	}
	return fmt.Sprintf("pool of %d tokens", n)
}

// parseInvalidKinds reads --invalid-kinds: a comma-separated list of
// invalidKinds; empty means all of them, "audience" only when the tokens
// carry an audience (aud) for the server to verify.
func parseInvalidKinds(list, aud string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		var out []string
		for _, k := range invalidKinds() {
			if k != "audience" || aud != "" {
				out = append(out, k)
			}
		}
		return out, nil
	}
	var out []string
	for k := range strings.SplitSeq(list, ",") {
		k = strings.TrimSpace(k)
		if !slices.Contains(invalidKinds(), k) {
			return nil, fmt.Errorf("--invalid-kinds: unknown %q (have %s)", k, strings.Join(invalidKinds(), ", "))
		}
		if k == "audience" && aud == "" {
			return nil, errors.New("--invalid-kinds audience: needs --aud (the audience the server verifies)")
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, nil
}
