//go:build !race

package envoy

// raceEnabled: the race detector changes allocation counts.
const raceEnabled = false
