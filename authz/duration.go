package authz

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written in the configuration as Go duration
// text: "10s", "5m", "1h30m". A bare number is refused (its unit would be a
// guess), and so is anything time.ParseDuration does not read.
//
// It decodes from YAML (UnmarshalYAML) and from text (UnmarshalText, for
// flags and the environment). The configuration decoder names the field in
// front of the error, so the error only says what is wrong with the value.
type Duration struct{ time.Duration }

// parseDuration reads s as a Duration (see Duration for the syntax).
func parseDuration(s string) (Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return Duration{}, errors.New("is empty: write a duration such as 10s or 5m")
	}
	if _, err := strconv.ParseFloat(t, 64); err == nil {
		return Duration{}, fmt.Errorf("%s has no unit: write %ss (seconds) or another unit (ms, s, m, h)", t, t)
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return Duration{}, fmt.Errorf("%s is not a duration: write a number with a unit (ms, s, m, h), such as 10s or 5m", strconv.Quote(t))
	}
	return Duration{d}, nil
}

// UnmarshalYAML reads a scalar duration; a list or a mapping is an error.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("must be a duration such as 10s or 5m, not a list or mapping")
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// UnmarshalText reads duration text (flags, environment variables).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := parseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalText writes the duration as Go duration text ("10s").
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.Duration.String()), nil
}

// MarshalYAML writes the duration as Go duration text ("10s").
func (d Duration) MarshalYAML() (any, error) {
	return d.Duration.String(), nil
}
