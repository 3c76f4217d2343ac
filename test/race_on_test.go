//go:build race

package test

// raceEnabled builds the binary under test with -race too, so a data race
// in the service fails the black-box tests (exit status 66).
const raceEnabled = true
