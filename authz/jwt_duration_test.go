package authz

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestDuration(t *testing.T) {
	cases := []struct {
		in      string // a YAML value
		want    time.Duration
		wantErr string
	}{
		{in: "10s", want: 10 * time.Second},
		{in: "1m30s", want: 90 * time.Second},
		{in: "0s", want: 0},
		{in: "'250ms'", want: 250 * time.Millisecond},
		{in: "-1s", want: -time.Second}, // parsed; Check refuses negatives
		{in: "10", wantErr: "10 has no unit: write 10s"},
		{in: "1.5", wantErr: "1.5 has no unit"},
		{in: "ten seconds", wantErr: `"ten seconds" is not a duration`},
		{in: "10 parsecs", wantErr: `"10 parsecs" is not a duration`},
		{in: "''", wantErr: "is empty"},
		{in: "[10s]", wantErr: "not a list or mapping"},
		{in: "{s: 10}", wantErr: "not a list or mapping"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			var got struct {
				D Duration `yaml:"d"`
			}
			err := yaml.Unmarshal([]byte("d: "+tc.in), &got)
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("decode %q: error %v, want %q", tc.in, err, tc.wantErr)
			case tc.wantErr == "" && err != nil:
				t.Fatalf("decode %q: %v", tc.in, err)
			case tc.wantErr == "" && got.D.Duration != tc.want:
				t.Fatalf("decode %q = %v, want %v", tc.in, got.D.Duration, tc.want)
			}
		})
	}
}

func TestDurationText(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("5m")); err != nil || d.Duration != 5*time.Minute {
		t.Fatalf("UnmarshalText(5m) = %v, %v", d, err)
	}
	if err := d.UnmarshalText([]byte("5")); err == nil {
		t.Fatal("UnmarshalText(5) accepted a bare number")
	}
	b, err := Duration{90 * time.Second}.MarshalText()
	if err != nil || string(b) != "1m30s" {
		t.Fatalf("MarshalText = %q, %v", b, err)
	}
	out, err := yaml.Marshal(struct {
		D Duration `yaml:"d"`
	}{Duration{10 * time.Second}})
	if err != nil || strings.TrimSpace(string(out)) != "d: 10s" {
		t.Fatalf("yaml.Marshal = %q, %v", out, err)
	}
	var back struct {
		D Duration `yaml:"d"`
	}
	if err := yaml.Unmarshal(out, &back); err != nil || back.D.Duration != 10*time.Second {
		t.Fatalf("round trip = %v, %v", back.D, err)
	}
}
