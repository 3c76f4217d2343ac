package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// The latency histogram is log-linear, in the manner of HdrHistogram:
// values below histLinear nanoseconds each have their own bucket (exact),
// and every power of two above is cut into histHalf equal buckets, so a
// value is reported within 1/2048 of itself (half a bucket): ±0.5 µs at
// 1 ms, ±5 µs at 10 ms. Memory is fixed (~300 KiB) whatever the run length.
const (
	histSubBits = 11
	histLinear  = 1 << histSubBits // 2048 ns: below this, exact
	histHalf    = histLinear / 2   // buckets per power of two above it
	histMaxExp  = 46               // 2^47 ns ≈ 39 h; larger values share the last bucket
	histBuckets = histLinear + (histMaxExp-histSubBits+1)*histHalf
)

// histogram records durations. Record is safe for concurrent use (atomic
// adds, no lock); read it (Quantile, Count, ...) once writers are done.
type histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64 // ns
	min    atomic.Uint64 // ns; math.MaxUint64 when empty
	max    atomic.Uint64 // ns
}

func newHistogram() *histogram {
	h := new(histogram)
	h.min.Store(math.MaxUint64)
	return h
}

// bucketOf returns the bucket index of v nanoseconds.
func bucketOf(v uint64) int {
	if v < histLinear {
		return int(v)
	}
	e := bits.Len64(v) - 1 // v is in [2^e, 2^(e+1)), e >= histSubBits
	if e > histMaxExp {
		return histBuckets - 1
	}
	sub := (v >> (e - (histSubBits - 1))) & (histHalf - 1)
	return histLinear + (e-histSubBits)*histHalf + int(sub)
}

// bucketRange returns the lowest value of bucket i and its width.
func bucketRange(i int) (lo, width uint64) {
	if i < histLinear {
		return uint64(i), 1
	}
	j := i - histLinear
	e := j/histHalf + histSubBits
	width = 1 << (e - (histSubBits - 1))
	return 1<<e + uint64(j%histHalf)*width, width
}

// Record adds one duration; negative durations count as 0.
func (h *histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for cur := h.min.Load(); v < cur && !h.min.CompareAndSwap(cur, v); cur = h.min.Load() {
	}
	for cur := h.max.Load(); v > cur && !h.max.CompareAndSwap(cur, v); cur = h.max.Load() {
	}
}

// Count is the number of recorded values.
func (h *histogram) Count() uint64 { return h.n.Load() }

// Min and Max are the exact extremes (0 when empty).
func (h *histogram) Min() time.Duration {
	if h.Count() == 0 {
		return 0
	}
	return time.Duration(h.min.Load())
}

func (h *histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Mean is the exact mean (0 when empty).
func (h *histogram) Mean() time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Quantile returns the value at quantile q in [0, 1]: the smallest recorded
// value v such that at least ceil(q·n) values are <= v, as the middle of
// its bucket, clamped to the exact min and max (so Quantile(1) is the
// max). An empty histogram answers 0.
func (h *histogram) Quantile(q float64) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(math.Ceil(q * float64(n)))
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			if i == histBuckets-1 {
				return h.Max() // the last bucket is open-ended
			}
			lo, width := bucketRange(i)
			v := lo + width/2
			v = min(max(v, h.min.Load()), h.max.Load())
			return time.Duration(v)
		}
	}
	return h.Max()
}
