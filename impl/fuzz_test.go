package impl

import (
	"strings"
	"testing"
	"time"
)

// The request-header parsers, fuzzed: whatever a client sends, they do not panic and what they accept
// is within bounds. The identify table beside them is FuzzIdentify's oracle.

func FuzzPreferWait(f *testing.F) {
	for _, s := range []string{
		"", "wait=0", "wait=5", "WAIT=60", "wait=61", "wait=18446744073709551616", "wait=-1", "wait=1.5",
		`wait="7"`, `wait="`, "wait", "wait=", "respond-async, wait=10", "wait=5;x=y", " wait = 5 ",
		"wait=abc, wait=5", "wait=5, wait=10", ",,,", ";", "=", "wait==5", "wait=0x10", "wait=+5",
		"wait=\u0665", "wait=5\x00", "handling=strict,respond-async,wait=3",
	} {
		f.Add(s, true)
	}
	f.Add("", false)
	f.Fuzz(func(t *testing.T, header string, present bool) {
		var h *string
		if present {
			h = &header
		}
		wait, ok := waitOf(h)
		if !ok {
			if wait != 0 {
				t.Fatalf("preferWait(%q) = %s, false: an ignored preference must wait 0", header, wait)
			}
			return
		}
		if !present {
			t.Fatal("preferWait(nil) = true")
		}
		if wait < 0 || wait > maxWait || wait%time.Second != 0 {
			t.Fatalf("preferWait(%q) = %s, want whole seconds in [0, %s]", header, wait, maxWait)
		}
		if !strings.Contains(strings.ToLower(header), "wait") {
			t.Fatalf("preferWait(%q) = %s, true, but the header names no wait", header, wait)
		}
	})
}
