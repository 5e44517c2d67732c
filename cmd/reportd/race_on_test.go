//go:build race

package main

// raceDetector reports whether the tests run under the race detector, which slows the report loop
// about tenfold: tests whose jobs are sized for a normal build skip themselves then.
const raceDetector = true
