//go:build race

package wal_test

// raceEnabled is true when tests run under the race detector, which makes
// sync.Pool drop items at random: allocation counts mean nothing then.
const raceEnabled = true
