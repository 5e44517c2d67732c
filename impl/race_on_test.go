//go:build race

package impl_test

// raceDetector says the tests run under the race detector, which allows a process 8,128 goroutines.
const raceDetector = true
