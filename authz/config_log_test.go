package authz

import (
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestLogSection: the log: section decodes strictly and validates, each
// problem naming its field.
func TestLogSection(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		wantErr  []string // substrings, each required; none means valid
		wantRate float64
	}{
		{name: "defaults", yaml: ""},
		{name: "empty section keeps defaults", yaml: "log:\n"},
		{name: "rate", yaml: "log:\n  allow_sample_rate: 0.25\n", wantRate: 0.25},
		{name: "rate one", yaml: "log:\n  allow_sample_rate: 1\n", wantRate: 1},
		{name: "rate above one", yaml: "log:\n  allow_sample_rate: 1.5\n", wantErr: []string{"log.allow_sample_rate: 1.5 must be between 0 and 1"}},
		{name: "negative rate", yaml: "log:\n  allow_sample_rate: -0.1\n", wantErr: []string{"log.allow_sample_rate: -0.1 must be between 0 and 1"}},
		{name: "nan rate", yaml: "log:\n  allow_sample_rate: .nan\n", wantErr: []string{"log.allow_sample_rate: NaN must be between 0 and 1"}},
		{name: "rate not a number", yaml: "log:\n  allow_sample_rate: often\n", wantErr: []string{`log.allow_sample_rate: "often" must be a number (line 6)`}},
		{name: "unknown log field", yaml: "log:\n  level: debug\n", wantErr: []string{"log.level: unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load([]byte(hsConfig(tt.yaml)), nil, LoadOptions{})
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Load(%q) succeeded, want an error naming %q", tt.yaml, tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("Load(%q) = %q\nwant it to contain %q", tt.yaml, err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Load(%q) = %v", tt.yaml, err)
			}
			if c.Log.AllowSampleRate != tt.wantRate {
				t.Errorf("Load(%q) = allow_sample_rate %v; want %v", tt.yaml, c.Log.AllowSampleRate, tt.wantRate)
			}
		})
	}
}

// TestAllowSampling: denials are always logged at info; allowed decisions
// at debug, except exactly rate of them, evenly spread, at info with the
// sample_rate field.
func TestAllowSampling(t *testing.T) {
	tests := []struct {
		rate     string
		allows   int
		wantInfo int
	}{
		{rate: "0", allows: 50, wantInfo: 0},
		{rate: "1", allows: 50, wantInfo: 50},
		{rate: "0.1", allows: 100, wantInfo: 10},
		{rate: "0.25", allows: 100, wantInfo: 25},
		{rate: "0.333", allows: 1000, wantInfo: 333},
		{rate: "0.000001", allows: 10, wantInfo: 0},
	}
	for _, tt := range tests {
		t.Run(tt.rate, func(t *testing.T) {
			core, logs := observer.New(zapcore.DebugLevel)
			a := newTestAuthorizer(t, hsConfig("log:\n  allow_sample_rate: "+tt.rate+"\n"), nil, zap.New(core))
			allowed := &Request{Method: "GET", Path: "/agents", Headers: bearerH(mintHS(t, user("agents:read")))}
			denied := &Request{Method: "GET", Path: "/agents"}
			for range tt.allows {
				if d := a.Decide(t.Context(), allowed); !d.Allowed() {
					t.Fatalf("Decide(GET /agents) = %d %s, want 200", d.Status, d.Detail)
				}
				if d := a.Decide(t.Context(), denied); d.Status != 401 {
					t.Fatalf("Decide(GET /agents, no token) = %d, want 401", d.Status)
				}
			}
			infoAllowed, debugAllowed, infoDenied := 0, 0, 0
			for _, e := range logs.All() {
				switch {
				case e.Message == msgAllowed && e.Level == zapcore.InfoLevel:
					infoAllowed++
					if got, ok := e.ContextMap()["sample_rate"].(float64); !ok || got <= 0 {
						t.Errorf("sampled line has sample_rate %v, want the rate", e.ContextMap()["sample_rate"])
					}
				case e.Message == msgAllowed && e.Level == zapcore.DebugLevel:
					if _, ok := e.ContextMap()["sample_rate"]; ok {
						t.Error("an unsampled allow line carries sample_rate")
					}
					debugAllowed++
				case e.Message == msgDenied && e.Level == zapcore.InfoLevel:
					infoDenied++
				}
			}
			if infoAllowed != tt.wantInfo || infoAllowed+debugAllowed != tt.allows {
				t.Errorf("allow_sample_rate %s over %d allows: %d at info, %d at debug; want %d at info, the rest at debug",
					tt.rate, tt.allows, infoAllowed, debugAllowed, tt.wantInfo)
			}
			if infoDenied != tt.allows {
				t.Errorf("denials at info = %d, want every one (%d)", infoDenied, tt.allows)
			}
		})
	}
}

// TestSampleEvenlySpread: with rate 1/k, every k-th allowed decision is
// the sampled one, so a burst is never logged all at once.
func TestSampleEvenlySpread(t *testing.T) {
	a := &Authorizer{}
	s := &snapshot{allowSample: (&LogConfig{AllowSampleRate: 0.25}).samplePPM()}
	d := &Decision{Status: 200}
	var got []int
	for k := 1; k <= 12; k++ {
		if a.sampleAllowed(s, d) > 0 {
			got = append(got, k)
		}
	}
	if want := []int{4, 8, 12}; !slices.Equal(got, want) {
		t.Errorf("sampled allows = %v, want %v", got, want)
	}
	if r := a.sampleAllowed(s, &Decision{Status: 403}); r != 0 {
		t.Errorf("sampleAllowed(denial) = %v, want 0", r)
	}
	// Past any counter value, the product never overflows.
	a.allowed.Store(1<<64 - 2)
	n := 0
	for range 8 {
		if a.sampleAllowed(s, d) > 0 {
			n++
		}
	}
	if n != 2 {
		t.Errorf("8 allows at the counter's end: %d sampled, want 2", n)
	}
}
