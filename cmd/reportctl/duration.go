package main

import (
	"fmt"
	"time"
)

// formatDuration is how reportctl writes every duration it prints (progress, bench, Retry-After,
// --timeout): one decimal always, in milliseconds under a second, in seconds under a minute, and in
// minutes and seconds (and hours) beyond: 0.4ms, 26.0ms, 8.0s, 12.2s, 2m05.3s, 1h02m00.0s. Go's own
// Duration.String drops a zero decimal ("8s" beside "12.2s") and its precision varies with the value.
func formatDuration(d time.Duration) string {
	if d < 0 {
		return "-" + formatDuration(-d)
	}
	if r := d.Round(100 * time.Microsecond); r < time.Second {
		return fmt.Sprintf("%.1fms", float64(r)/float64(time.Millisecond))
	}
	r := d.Round(100 * time.Millisecond)
	h, m := r/time.Hour, r%time.Hour/time.Minute
	s := float64(r%time.Minute) / float64(time.Second)
	switch {
	case h > 0:
		return fmt.Sprintf("%dh%02dm%04.1fs", h, m, s)
	case m > 0:
		return fmt.Sprintf("%dm%04.1fs", m, s)
	}
	return fmt.Sprintf("%.1fs", s)
}
