package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBucketsTileTheRange(t *testing.T) {
	// Buckets are contiguous, each maps back to itself, and widths respect
	// the precision bound: 1 below histLinear, at most lo/1024 above.
	var next uint64
	for i := range histBuckets {
		lo, width := bucketRange(i)
		if lo != next {
			t.Fatalf("bucketRange(%d) starts at %d, want %d (contiguous)", i, lo, next)
		}
		if got := bucketOf(lo); got != i {
			t.Fatalf("bucketOf(%d) = %d, want %d", lo, got, i)
		}
		if got := bucketOf(lo + width - 1); got != i {
			t.Fatalf("bucketOf(%d) = %d, want %d (last value of bucket)", lo+width-1, got, i)
		}
		if lo >= histLinear && width > lo/(histHalf) {
			t.Fatalf("bucket %d [%d, +%d) is wider than 1/%d of its values", i, lo, width, histHalf)
		}
		if lo < histLinear && width != 1 {
			t.Fatalf("bucket %d below %d has width %d, want 1", i, histLinear, width)
		}
		next = lo + width
	}
	if bucketOf(math.MaxUint64) != histBuckets-1 || bucketOf(1<<(histMaxExp+1)) != histBuckets-1 {
		t.Errorf("values beyond 2^%d do not share the last bucket", histMaxExp+1)
	}
}

func TestQuantile(t *testing.T) {
	us := time.Microsecond
	seq := func(from, to, step time.Duration) []time.Duration {
		var out []time.Duration
		for v := from; v <= to; v += step {
			out = append(out, v)
		}
		return out
	}
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
		tol    time.Duration
	}{
		{name: "empty", values: nil, q: 0.5, want: 0},
		{name: "single value is exact", values: []time.Duration{123456789}, q: 0.5, want: 123456789},
		{name: "single value p99.9", values: []time.Duration{123456789}, q: 0.999, want: 123456789},
		{name: "exact ns below 2048: p50", values: seq(1, 1000, 1), q: 0.50, want: 500},
		{name: "exact ns below 2048: p99", values: seq(1, 1000, 1), q: 0.99, want: 990},
		{name: "exact ns below 2048: p99.9", values: seq(1, 1000, 1), q: 0.999, want: 999},
		{name: "q=1 is the max", values: seq(1, 1000, 1), q: 1, want: 1000},
		{name: "q=0 is the min", values: seq(7, 1000, 1), q: 0, want: 7},
		{name: "q above 1 clamps", values: seq(1, 10, 1), q: 2, want: 10},
		{name: "µs: p50 of 1..1000 µs", values: seq(us, 1000*us, us), q: 0.5, want: 500 * us, tol: us / 2},
		{name: "µs: p99 of 1..1000 µs", values: seq(us, 1000*us, us), q: 0.99, want: 990 * us, tol: us / 2},
		{name: "ms range within 1/2048", values: seq(time.Millisecond, 100*time.Millisecond, time.Millisecond), q: 0.5, want: 50 * time.Millisecond, tol: 50 * time.Millisecond / 2048},
		{name: "negative counts as 0", values: []time.Duration{-5, -5, 10}, q: 0.5, want: 0},
		{name: "huge value clamps to the exact max", values: []time.Duration{1, math.MaxInt64}, q: 1, want: math.MaxInt64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHistogram()
			for _, v := range tc.values {
				h.Record(v)
			}
			got := h.Quantile(tc.q)
			if d := got - tc.want; d < -tc.tol || d > tc.tol {
				t.Errorf("Quantile(%v) = %v, want %v ± %v", tc.q, got, tc.want, tc.tol)
			}
		})
	}
}

// TestQuantileAgainstSorted compares the histogram with the exact
// nearest-rank quantiles of a sorted sample spread over five decades.
func TestQuantileAgainstSorted(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	h := newHistogram()
	vals := make([]time.Duration, 100000)
	for i := range vals {
		// log-uniform between 1 µs and 100 ms
		v := time.Duration(math.Exp(math.Log(1e3) + rng.Float64()*(math.Log(1e8)-math.Log(1e3))))
		vals[i] = v
		h.Record(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.001, 0.5, 0.9, 0.99, 0.999, 0.9999, 1} {
		rank := int(math.Ceil(q * float64(len(vals))))
		want := vals[rank-1]
		got := h.Quantile(q)
		tol := want/2048 + 1
		if d := got - want; d < -tol || d > tol {
			t.Errorf("Quantile(%v) = %v, want %v ± %v (exact sorted)", q, got, want, tol)
		}
	}
	if h.Min() != vals[0] || h.Max() != vals[len(vals)-1] {
		t.Errorf("Min, Max = %v, %v, want %v, %v", h.Min(), h.Max(), vals[0], vals[len(vals)-1])
	}
	var sum time.Duration
	for _, v := range vals {
		sum += v
	}
	if want := sum / time.Duration(len(vals)); h.Mean() != want {
		t.Errorf("Mean() = %v, want %v", h.Mean(), want)
	}
}

func TestHistogramConcurrentRecord(t *testing.T) {
	h := newHistogram()
	const workers, each = 8, 5000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				h.Record(time.Duration(w*each + i + 1))
			}
		})
	}
	wg.Wait()
	if h.Count() != workers*each {
		t.Errorf("Count() = %d, want %d", h.Count(), workers*each)
	}
	if h.Min() != 1 || h.Max() != workers*each {
		t.Errorf("Min, Max = %v, %v, want 1ns, %v", h.Min(), h.Max(), time.Duration(workers*each))
	}
}

func TestHistogramEmpty(t *testing.T) {
	h := newHistogram()
	if h.Count() != 0 || h.Min() != 0 || h.Max() != 0 || h.Mean() != 0 || h.Quantile(0.99) != 0 {
		t.Errorf("empty histogram: count %d min %v max %v mean %v p99 %v, want all 0",
			h.Count(), h.Min(), h.Max(), h.Mean(), h.Quantile(0.99))
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	h := newHistogram()
	b.ReportAllocs()
	v := time.Duration(0)
	for b.Loop() {
		v = (v + 7919) % (50 * time.Millisecond)
		h.Record(v)
	}
}
