package main

import (
	"context"
	"io"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/agentos-authz/agentos-authz/authz"
)

// The service's logger. Denial lines ("check denied", one per denial)
// bypass zap's production sampler, which would drop repeats of a message
// silently (600 denials gave 105 lines); they go through an explicit token
// bucket instead (log.denials_per_second, log.denial_burst), and the lines
// it holds back are counted and reported by a "denial log lines
// suppressed" line. Every other message keeps zap's sampler.

// suppressedReportInterval is how often the count of suppressed denial
// lines is reported while it is not zero.
const suppressedReportInterval = 10 * time.Second

// msgSuppressed is the message of the suppressed-lines report.
const msgSuppressed = "denial log lines suppressed"

// newLogger is zap's production JSON logger (sampled; denial lines rate
// limited at the defaults instead), or a readable console logger for
// --dev, writing to w.
func newLogger(w io.Writer, dev bool, level zapcore.Level) *zap.Logger {
	return newServiceLogger(w, dev, level, authz.LogConfig{
		DenialsPerSecond: authz.DefaultDenialsPerSecond,
		DenialBurst:      authz.DefaultDenialBurst,
	})
}

// newServiceLogger is newLogger with the denial-line limit of cfg.
func newServiceLogger(w io.Writer, dev bool, level zapcore.Level, cfg authz.LogConfig) *zap.Logger {
	sink := zapcore.Lock(zapcore.AddSync(w))
	if dev {
		enc := zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
		return zap.New(zapcore.NewCore(enc, sink, level), zap.ErrorOutput(sink))
	}
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	direct := zapcore.NewCore(enc, sink, level)
	sampled := zapcore.NewSamplerWithOptions(direct, time.Second, 100, 100)
	lim := newLineLimiter(cfg.DenialsPerSecond, cfg.DenialBurst, time.Now, direct)
	return zap.New(newDenialCore(sampled, direct, lim), zap.ErrorOutput(sink))
}

// denialCore routes denial lines through lim to the unsampled core and
// every other entry to the sampled one.
type denialCore struct {
	zapcore.Core // sampled: everything but denial lines
	direct       zapcore.Core
	lim          *lineLimiter
}

var _ zapcore.Core = (*denialCore)(nil)

func newDenialCore(sampled, direct zapcore.Core, lim *lineLimiter) *denialCore {
	return &denialCore{Core: sampled, direct: direct, lim: lim}
}

func (c *denialCore) Enabled(l zapcore.Level) bool {
	return c.Core.Enabled(l) || c.direct.Enabled(l)
}

func (c *denialCore) With(fields []zapcore.Field) zapcore.Core {
	return &denialCore{Core: c.Core.With(fields), direct: c.direct.With(fields), lim: c.lim}
}

func (c *denialCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Message != authz.MsgDenied {
		return c.Core.Check(e, ce)
	}
	if !c.direct.Enabled(e.Level) {
		return ce
	}
	if !c.lim.allow() {
		return ce
	}
	return c.direct.Check(e, ce)
}

// lineLimiter is a token bucket of burst lines refilled at rate a second
// (rate 0: no limit), counting the lines it refuses and reporting the count
// on out. Safe for concurrent use.
type lineLimiter struct {
	rate  float64
	burst float64
	now   func() time.Time
	out   zapcore.Core

	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed uint64
	since      time.Time // first suppressed line not reported yet
}

func newLineLimiter(rate float64, burst int, now func() time.Time, out zapcore.Core) *lineLimiter {
	return &lineLimiter{rate: rate, burst: float64(burst), tokens: float64(burst), now: now, last: now(), out: out}
}

// allow takes a token; false means the line is suppressed (and counted).
// A report of the lines suppressed so far is written first when it is due.
func (l *lineLimiter) allow() bool {
	if l.rate <= 0 {
		return true
	}
	now := l.now()
	l.mu.Lock()
	if el := now.Sub(l.last).Seconds(); el > 0 {
		l.tokens = min(l.burst, l.tokens+el*l.rate)
		l.last = now
	}
	ok := l.tokens >= 1
	if ok {
		l.tokens--
	} else {
		if l.suppressed == 0 {
			l.since = now
		}
		l.suppressed++
	}
	n, since := l.takeDue(now, suppressedReportInterval)
	l.mu.Unlock()
	l.write(n, since, now)
	return ok
}

// takeDue returns and resets the suppressed count, with the time of its
// first line, when that line is at least after old (0 when nothing is
// due). l.mu is held.
func (l *lineLimiter) takeDue(now time.Time, after time.Duration) (uint64, time.Time) {
	if l.suppressed == 0 || now.Sub(l.since) < after {
		return 0, time.Time{}
	}
	n, since := l.suppressed, l.since
	l.suppressed = 0
	return n, since
}

// flush reports every suppressed line not reported yet.
func (l *lineLimiter) flush() {
	now := l.now()
	l.mu.Lock()
	n, since := l.takeDue(now, 0)
	l.mu.Unlock()
	l.write(n, since, now)
}

func (l *lineLimiter) write(n uint64, since, now time.Time) {
	if n == 0 {
		return
	}
	_ = l.out.Write(zapcore.Entry{Level: zapcore.WarnLevel, Time: now, Message: msgSuppressed}, []zapcore.Field{
		zap.Uint64("suppressed", n),
		zap.Duration("over", now.Sub(since)),
		zap.Float64("limit_per_second", l.rate),
		zap.Int("burst", int(l.burst)),
	})
}

// reportSuppressed reports the suppressed denial lines of log's limiter
// every interval until ctx is done, then once more; it returns at once
// for a logger without one (--dev, tests).
func reportSuppressed(ctx context.Context, log *zap.Logger, interval time.Duration) {
	c, ok := log.Core().(*denialCore)
	if !ok || c.lim.rate <= 0 {
		return
	}
	defer c.lim.flush()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.lim.flush()
		}
	}
}
