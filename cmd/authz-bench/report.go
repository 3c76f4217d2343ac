package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// printResult writes one run in human-readable form.
func printResult(w io.Writer, label string, r *Result) {
	fmt.Fprintf(w, "workload   %s -> %s, %d in flight over %d connections\n", label, r.Target, r.Concurrency, r.Conns)
	fmt.Fprintf(w, "measured   %.2f s after a %.1f s warm-up", r.Seconds, r.Warmup)
	if r.Exhausted {
		fmt.Fprint(w, " (fresh tokens ran out: measured for less than --duration)")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "requests   %d   %.1f rps\n", r.Requests, r.RPS)
	if r.Rate > 0 {
		fmt.Fprintf(w, "open loop  %.0f checks/s scheduled, %d late (not sent: --concurrency in flight)\n", r.Rate, r.Late)
	}
	fmt.Fprintf(w, "latency    p50 %.1f µs   p90 %.1f µs   p99 %.1f µs   p99.9 %.1f µs   max %.1f µs   mean %.1f µs\n",
		r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.P999, r.Latency.Max, r.Latency.Mean)
	fmt.Fprintf(w, "outcomes   %s\n", outcomeLine(r))
	if r.FirstError != "" {
		fmt.Fprintf(w, "first err  %s\n", r.FirstError)
	}
	if r.ServerPID > 0 {
		fmt.Fprintf(w, "server     %.2f µs CPU per check (pid %d, %.2f cores busy)\n", r.ServerCPU, r.ServerPID, r.ServerUtil)
		if r.OtherOnServerCore > 0 {
			fmt.Fprintf(w, "server CPU busy with other work %.1f%% of the time\n", 100*r.OtherOnServerCore)
		}
	}
	fmt.Fprintf(w, "client     %.2f µs CPU per check (%.2f cores busy)\n", r.LoadCPU, r.LoadUtil)
}

// outcomeLine is "allowed N   denied N (403: N)   errors N   unexpected N".
func outcomeLine(r *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "allowed %d   denied %d", r.Allowed, r.Denied)
	if len(r.DeniedByStatus) > 0 {
		var parts []string
		for _, k := range sortedStatuses(r.DeniedByStatus) {
			parts = append(parts, fmt.Sprintf("%s: %d", k, r.DeniedByStatus[k]))
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, "   errors %d   unexpected %d", r.Errors, r.Unexpected)
	return b.String()
}

// printCompare writes the side-by-side table of a comparison.
func printCompare(w io.Writer, rep *compareReport) {
	fmt.Fprintf(w, "authz-bench compare: %s (pid %d) vs no-op server (pid %d)\n", rep.Service.Bin, rep.Service.PID, rep.Noop.PID)
	fmt.Fprintf(w, "pinning: %s\n", rep.Pinning)
	fmt.Fprintf(w, "load: %d in flight over %d connections; warm-up %.1f s, then %.1f s per run; %.0f%% of requests allowed, %.0f%% denied 403, %.0f%% replayed invalid tokens denied 401 (pooled; fresh: %.0f%% allowed, the rest 403)\n\n",
		rep.Concurrency, rep.Conns, rep.Warmup, rep.Duration, 100*rep.Mix, 100*(1-rep.Mix-rep.Invalid), 100*rep.Invalid, 100*rep.Mix)

	const rowFmt = "%-14s %-21s %11s %11s %7s  %-8s %s\n"
	fmt.Fprintf(w, rowFmt, "scenario", "metric", "service", "no-op", "ratio", "target", "")
	for _, s := range rep.Scenarios {
		checks := make(map[string]check, len(s.Checks))
		for _, c := range s.Checks {
			checks[c.Metric] = c
		}
		first := s.Name
		row := func(metric, checkName string, svc, noop float64, prec int) {
			ratio := "-"
			if noop > 0 {
				ratio = fmt.Sprintf("%.3f", svc/noop)
			}
			target, verdict := "", ""
			if c, ok := checks[checkName]; ok {
				target, verdict = c.Target, passMiss(c.Pass)
			}
			fmt.Fprintf(w, rowFmt, first, metric,
				strconv.FormatFloat(svc, 'f', prec, 64), strconv.FormatFloat(noop, 'f', prec, 64), ratio, target, verdict)
			first = ""
		}
		row("rps", "rps", s.Service.RPS, s.Noop.RPS, 0)
		row("p50 µs", "", s.Service.Latency.P50, s.Noop.Latency.P50, 1)
		row("p99 µs", "p99", s.Service.Latency.P99, s.Noop.Latency.P99, 1)
		row("p99.9 µs", "", s.Service.Latency.P999, s.Noop.Latency.P999, 1)
		row("server CPU µs/check", "server CPU per check", s.Service.ServerCPU, s.Noop.ServerCPU, 2)
		row("server cores busy", "", s.Service.ServerUtil, s.Noop.ServerUtil, 2)
		row("other work on its CPU", "", s.Service.OtherOnServerCore, s.Noop.OtherOnServerCore, 2)
		row("load CPU µs/check", "", s.Service.LoadCPU, s.Noop.LoadCPU, 2)
		row("checks measured", "", float64(s.Service.Requests), float64(s.Noop.Requests), 0)
	}

	fmt.Fprintln(w)
	for _, s := range rep.Scenarios {
		fmt.Fprintf(w, "%s (%s), service: %s\n", s.Name, s.Workload, outcomeLine(s.Service))
	}
	if c := rep.FreshCheck; c != nil {
		fmt.Fprintf(w, "fresh RS256 tokens, server CPU per check: %.2f µs more than pooled RS256, %.2f µs more than the no-op server; one bare RS256 verification: %.2f µs\n",
			rep.FreshExtra, rep.FreshOverNoop, rep.BareVerify)
		fmt.Fprintf(w, "fresh RS256 budget: %s = %.3f (target %s) %s\n", c.Metric, c.Ratio, c.Target, passMiss(c.Pass))
	}
	fmt.Fprintf(w, "service RSS after the runs: %.1f MiB (peak %.1f MiB), %d distinct tokens sent (the 64 MiB target is for 100k cached tokens)\n",
		float64(rep.ServiceRSS)/(1<<20), float64(rep.ServicePeakRSS)/(1<<20), rep.DistinctTokens)
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "PROBLEM: %s\n", p)
	}
}

func passMiss(pass bool) string {
	if pass {
		return "pass"
	}
	return "MISS"
}
