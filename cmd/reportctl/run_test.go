package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/testkit"
)

// TestUsage: command lines reportctl cannot use exit 2 with a message and the usage on stderr; help
// exits 0 with the usage on stdout. None of them reaches a service.
func TestUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		code       int
		wantStdout string
		wantStderr string
	}{
		{name: "no-command", args: nil, code: 2, wantStderr: "no command given"},
		{name: "unknown-command", args: []string{"frobnicate"}, code: 2, wantStderr: `unknown command "frobnicate"`},
		{name: "unknown-flag", args: []string{"--verbose", "status"}, code: 2, wantStderr: "flag provided but not defined: -verbose"},
		{name: "help", args: []string{"--help"}, code: 0, wantStdout: "Commands:\n  create"},
		{name: "help-command", args: []string{"help", "bench"}, code: 0, wantStdout: "Usage: reportctl bench [-n JOBS] [-c CONCURRENCY] [--range R]"},
		{name: "command-help", args: []string{"create", "--help"}, code: 0, wantStdout: "-idempotency-key string"},
		{name: "create-no-range", args: []string{"create"}, code: 2, wantStderr: "--range is required"},
		{name: "create-o-without-wait", args: []string{"create", "--range", "2026-Q1", "-o", "x.csv"}, code: 2, wantStderr: "-o and --csv need --wait"},
		{name: "create-stray-arg", args: []string{"create", "--range", "2026-Q1", "now"}, code: 2, wantStderr: "create takes 0 argument(s)"},
		{name: "status-no-id", args: []string{"status"}, code: 2, wantStderr: "status takes 1 argument(s) (ID), got 0"},
		{name: "status-bad-id", args: []string{"status", "42"}, code: 2, wantStderr: `"42" is not a job id`},
		{name: "result-two-ids", args: []string{"result", "a", "b"}, code: 2, wantStderr: "got 2"},
		{name: "bench-zero", args: []string{"bench", "-n", "0"}, code: 2, wantStderr: "-n and -c must be at least 1"},
		{name: "bad-server", args: []string{"--server", "localhost:8080", "status", "00000000-0000-4000-8000-000000000000"}, code: 2, wantStderr: "--server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, func(string) string { return "http://127.0.0.1:1" }, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stdout.String(), tt.wantStdout) || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("run(%q) = %d, want %d with %q on stdout and %q on stderr\nstdout:\n%s\nstderr:\n%s",
					tt.args, code, tt.code, tt.wantStdout, tt.wantStderr, &stdout, &stderr)
			}
		})
	}
}

func TestParseFlagsAllowsFlagsAfterArguments(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	// The service is unreachable, so the command fails (1), but after parsing its flags and argument.
	code := run(context.Background(), []string{"result", "00000000-0000-4000-8000-000000000000", "--csv", "--server", "http://127.0.0.1:1"},
		func(string) string { return "" }, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "127.0.0.1:1") {
		t.Errorf("run = %d, want 1 from the unreachable --server given after the id\nstderr:\n%s", code, &stderr)
	}
}

func TestFormatting(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ got, want string }{
		{thousands(0), "0"},
		{thousands(999), "999"},
		{thousands(1000), "1,000"},
		{thousands(-1234567), "-1,234,567"},
		{money(123456789), "1,234,567.89"},
		{money(5), "0.05"},
		{share(1, 3), "33.3%"},
		{percentiles([]int{3, 1, 2}, func(i int) string { return string(rune('0' + i)) }), "p50 2  p90 3  p99 3  max 3"},
		{percentiles([]time.Duration{}, formatDuration), "-"},
		{percentiles([]time.Duration{1234567 * time.Nanosecond, 15 * time.Second}, formatDuration), "p50 1.2ms  p90 15.0s  p99 15.0s  max 15.0s"},
		// One format for every duration: one decimal, whatever the value.
		{formatDuration(0), "0.0ms"},
		{formatDuration(420 * time.Microsecond), "0.4ms"},
		{formatDuration(26 * time.Millisecond), "26.0ms"},
		{formatDuration(999960 * time.Microsecond), "1.0s"},
		{formatDuration(8 * time.Second), "8.0s"},
		{formatDuration(12240 * time.Millisecond), "12.2s"},
		{formatDuration(59960 * time.Millisecond), "1m00.0s"},
		{formatDuration(125300 * time.Millisecond), "2m05.3s"},
		{formatDuration(time.Hour + 2*time.Minute), "1h02m00.0s"},
		{formatDuration(-1500 * time.Millisecond), "-1.5s"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// TestPlainProgress: off a terminal, progress is a line per change of status or whole percentage.
func TestPlainProgress(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := newProgress(&buf, false)
	for _, s := range []struct {
		state gen.JobState
		share float64
	}{{gen.Pending, 0}, {gen.Pending, 0}, {gen.Running, 0.421}, {gen.Running, 0.424}, {gen.Running, 0.9}} {
		p.update(gen.JobStatus{Status: s.state, Progress: s.share})
	}
	p.stop(true)
	var states []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		states = append(states, strings.SplitN(l, " after ", 2)[0])
	}
	if got, want := strings.Join(states, ", "), "pending 0%, running 42%, running 90%, done 100%"; got != want {
		t.Errorf("progress lines = %s, want %s\n%s", got, want, &buf)
	}
}

// TestTerminalProgress: on a terminal, the bar redraws itself in place and ends with a newline.
func TestTerminalProgress(t *testing.T) {
	t.Parallel()
	var buf testkit.Buffer
	p := newProgress(&buf, true)
	p.update(gen.JobStatus{Status: gen.Running, Progress: 0.5})
	time.Sleep(250 * time.Millisecond)
	p.stop(true)
	out := buf.String()
	if !strings.Contains(out, "\r\x1b[K[###############...............]  50%  running") ||
		!strings.HasSuffix(out, "[##############################] 100%  done     "+lastElapsed(out)+"\n") {
		t.Errorf("bar output = %q", out)
	}
}

func lastElapsed(out string) string {
	out = strings.TrimSuffix(out, "\n")
	return out[strings.LastIndexByte(out, ' ')+1:]
}
