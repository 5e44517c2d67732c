//go:build !race

package main

// raceDetector says the tests run under the race detector, which makes a report's summary about ten
// times slower.
const raceDetector = false
