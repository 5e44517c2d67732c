package main

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reportd/reportd/tasks"
)

// env is a getenv over a map.
func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	got, err := loadConfig(env(nil))
	if err != nil {
		t.Fatalf("loadConfig with no variables: %v", err)
	}
	want := config{
		Addr:            "localhost:8080",
		Retention:       24 * time.Hour,
		Tombstone:       30 * 24 * time.Hour,
		Concurrency:     runtime.NumCPU(),
		JobTimeout:      10 * time.Minute,
		MaxRetry:        3,
		RowsPerDay:      tasks.DefaultRowsPerDay,
		CheckInterval:   20 * time.Millisecond,
		JanitorInterval: 8 * time.Second,
		ProgressEvery:   250 * time.Millisecond,
		ShutdownTimeout: 20 * time.Second,
		DelayedCheck:    time.Second,
		WebhookSchedule: []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute,
			2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour},
		WebhookTimeout:     15 * time.Second,
		WebhookConcurrency: 16,
		SubmitsPerSecond:   20,
		SubmitBurst:        50,
		MaxOpenJobs:        1000,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestLoadConfigVariables(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, value string
		set         func(*config)
	}{
		{"REPORTD_ADDR", "127.0.0.1:0", func(c *config) { c.Addr = "127.0.0.1:0" }},
		{"REPORTD_OPS_ADDR", "127.0.0.1:9090", func(c *config) { c.OpsAddr = "127.0.0.1:9090" }},
		{"REDIS_URL", "redis://localhost:6379/2", func(c *config) { c.RedisURL = "redis://localhost:6379/2" }},
		{"REPORTD_RETENTION", "2h", func(c *config) { c.Retention = 2 * time.Hour }},
		{"REPORTD_TOMBSTONE", "0s", func(c *config) { c.Tombstone = 0 }},
		{"REPORTD_CONCURRENCY", "7", func(c *config) { c.Concurrency = 7 }},
		{"REPORTD_JOB_TIMEOUT", "90s", func(c *config) { c.JobTimeout = 90 * time.Second }},
		{"REPORTD_MAX_RETRY", "0", func(c *config) { c.MaxRetry = 0 }},
		{"REPORTD_ROWS_PER_DAY", "500", func(c *config) { c.RowsPerDay = 500 }},
		{"REPORTD_CHECK_INTERVAL", "5ms", func(c *config) { c.CheckInterval = 5 * time.Millisecond }},
		{"REPORTD_JANITOR_INTERVAL", "200ms", func(c *config) { c.JanitorInterval = 200 * time.Millisecond }},
		{"REPORTD_PROGRESS_EVERY", "1s", func(c *config) { c.ProgressEvery = time.Second }},
		{"REPORTD_SHUTDOWN_TIMEOUT", "3s", func(c *config) { c.ShutdownTimeout = 3 * time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := loadConfig(env(map[string]string{tt.name: tt.value}))
			if err != nil {
				t.Fatalf("loadConfig(%s=%s): %v", tt.name, tt.value, err)
			}
			want := defaultConfig()
			tt.set(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s=%s (-want +got):\n%s", tt.name, tt.value, diff)
			}
		})
	}
}

func TestLoadConfigInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		vars  map[string]string
		wants []string // every variable the error must name
	}{
		{"retention-not-a-duration", map[string]string{"REPORTD_RETENTION": "abc"}, []string{"REPORTD_RETENTION"}},
		{"retention-fraction-of-second", map[string]string{"REPORTD_RETENTION": "1500ms"}, []string{"REPORTD_RETENTION"}},
		{"retention-too-short", map[string]string{"REPORTD_RETENTION": "500ms"}, []string{"REPORTD_RETENTION"}},
		{"retention-bare-number", map[string]string{"REPORTD_RETENTION": "86400"}, []string{"REPORTD_RETENTION"}},
		{"tombstone-negative", map[string]string{"REPORTD_TOMBSTONE": "-1h"}, []string{"REPORTD_TOMBSTONE"}},
		{"concurrency-zero", map[string]string{"REPORTD_CONCURRENCY": "0"}, []string{"REPORTD_CONCURRENCY"}},
		{"concurrency-not-a-number", map[string]string{"REPORTD_CONCURRENCY": "four"}, []string{"REPORTD_CONCURRENCY"}},
		{"job-timeout-too-short", map[string]string{"REPORTD_JOB_TIMEOUT": "10ms"}, []string{"REPORTD_JOB_TIMEOUT"}},
		{"max-retry-negative", map[string]string{"REPORTD_MAX_RETRY": "-1"}, []string{"REPORTD_MAX_RETRY"}},
		{"rows-per-day-zero", map[string]string{"REPORTD_ROWS_PER_DAY": "0"}, []string{"REPORTD_ROWS_PER_DAY"}},
		{"check-interval-zero", map[string]string{"REPORTD_CHECK_INTERVAL": "0s"}, []string{"REPORTD_CHECK_INTERVAL"}},
		{"janitor-interval-too-short", map[string]string{"REPORTD_JANITOR_INTERVAL": "10ms"}, []string{"REPORTD_JANITOR_INTERVAL"}},
		{"progress-every-negative", map[string]string{"REPORTD_PROGRESS_EVERY": "-1s"}, []string{"REPORTD_PROGRESS_EVERY"}},
		{"shutdown-timeout-garbage", map[string]string{"REPORTD_SHUTDOWN_TIMEOUT": "soon"}, []string{"REPORTD_SHUTDOWN_TIMEOUT"}},
		{
			"several-at-once",
			map[string]string{"REPORTD_RETENTION": "abc", "REPORTD_CONCURRENCY": "0", "REPORTD_MAX_RETRY": "x"},
			[]string{"REPORTD_RETENTION", "REPORTD_CONCURRENCY", "REPORTD_MAX_RETRY"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadConfig(env(tt.vars))
			if err == nil {
				t.Fatalf("loadConfig(%v) succeeded, want an error", tt.vars)
			}
			for _, name := range tt.wants {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error %q does not name %s", err, name)
				}
			}
		})
	}
}

func TestConfigRedacted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, url string
		want      string // "" means unchanged
		secret    string // must not appear in the redacted URL
	}{
		{name: "no-url", url: ""},
		{name: "no-password", url: "redis://localhost:6379/0"},
		{name: "user-only", url: "redis://alice@localhost:6379"},
		{name: "user-and-password", url: "redis://alice:s3cret@localhost:6379/1", want: "redis://alice:xxxxx@localhost:6379/1", secret: "s3cret"},
		{name: "password-only", url: "redis://:s3cret@localhost:6379", want: "redis://:xxxxx@localhost:6379", secret: "s3cret"},
		{name: "tls", url: "rediss://default:s3cret@redis.example.com:6380", want: "rediss://default:xxxxx@redis.example.com:6380", secret: "s3cret"},
		{name: "escaped-password", url: "redis://:p%40ss%2Fword@localhost:6379", want: "redis://:xxxxx@localhost:6379", secret: "ss"},
		// A password that was not percent-encoded makes the URL unparseable; it must not be logged
		// as it is for that.
		{name: "unencoded-percent", url: "redis://:50%off@localhost:6379", secret: "50%off"},
		{name: "unencoded-hash", url: "redis://:top#secret@localhost:6379", secret: "top#secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := defaultConfig()
			c.RedisURL = tt.url
			got := c.redacted()
			if tt.secret != "" && strings.Contains(got.RedisURL, tt.secret) {
				t.Errorf("redacted RedisURL = %q, still has the password", got.RedisURL)
			}
			if tt.want != "" && got.RedisURL != tt.want {
				t.Errorf("redacted RedisURL = %q, want %q", got.RedisURL, tt.want)
			}
			if tt.want == "" && tt.secret == "" && got.RedisURL != tt.url {
				t.Errorf("redacted RedisURL = %q, want it unchanged (%q)", got.RedisURL, tt.url)
			}
			got.RedisURL = c.RedisURL
			if diff := cmp.Diff(c, got); diff != "" {
				t.Errorf("redacted changed more than the URL (-want +got):\n%s", diff)
			}
		})
	}
}
