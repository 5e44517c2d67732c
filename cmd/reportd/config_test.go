package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reportd/reportd/internal/httpapi"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/webhook"
)

// env is a getenv over a map.
func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// TestLoadConfigEmptyEnvironment: with nothing set, reportd starts as documented: the API open on a
// loopback address over an embedded Redis, webhooks off, nothing limited, a worker per CPU. The docs
// test pins the defaults' text; the defaults that stand for a constant of another package are pinned
// to it here.
func TestLoadConfigEmptyEnvironment(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(env(nil))
	if err != nil {
		t.Fatalf("loadConfig with no variables: %v", err)
	}
	if host, _, err := net.SplitHostPort(c.Addr); err != nil || host != "localhost" {
		t.Errorf("Addr = %q: want a loopback address, which may be served open", c.Addr)
	}
	if c.RedisURL != "" || c.RedisClusterAddrs != nil || len(c.APIKeys) != 0 || c.WebhookSecret != "" || c.AdminToken != "" {
		t.Errorf("want an embedded Redis, no API keys, webhooks off and a generated admin token: %+v", c)
	}
	if c.SubmitsPerSecond != 0 || c.MaxOpenJobs != 0 {
		t.Errorf("open, limits %v/s and %d open jobs, want none", c.SubmitsPerSecond, c.MaxOpenJobs)
	}
	if c.Concurrency != runtime.NumCPU() {
		t.Errorf("Concurrency = %d, want the number of CPUs, %d", c.Concurrency, runtime.NumCPU())
	}
	if c.RowsPerDay != report.DefaultRowsPerDay {
		t.Errorf("RowsPerDay = %d, want report.DefaultRowsPerDay, %d", c.RowsPerDay, report.DefaultRowsPerDay)
	}
	if diff := cmp.Diff(webhook.DefaultSchedule, c.WebhookSchedule); diff != "" {
		t.Errorf("WebhookSchedule is not webhook.DefaultSchedule (-want +got):\n%s", diff)
	}
	if c.QueueShards != 0 || settingOf("QueueShards").max != strconv.Itoa(store.MaxShards) {
		t.Errorf("QueueShards = %d (want 0: one a master), max %s (want store.MaxShards, %d)", c.QueueShards, settingOf("QueueShards").max, store.MaxShards)
	}
	if diff := cmp.Diff(defaultConfig(), c); diff != "" {
		t.Errorf("defaultConfig is not the empty environment's (-want +got):\n%s", diff)
	}
}

// TestLoadConfigLimits: with API keys, from the variable or its file, every client is limited by
// default; a limit set holds, with keys or without.
func TestLoadConfigLimits(t *testing.T) {
	t.Parallel()
	keysFile := writeFile(t, "keys", "# clients\nacme:0123456789abcdef\nbeta:fedcba9876543210\n")
	for _, tt := range []struct {
		name      string
		vars      map[string]string
		rate      float64
		open      int
		wantNames []string
	}{
		{"keys", map[string]string{"REPORTD_API_KEYS": "acme:0123456789abcdef"}, 20, 1000, []string{"acme"}},
		{"keys-file", map[string]string{"REPORTD_API_KEYS_FILE": keysFile}, 20, 1000, []string{"acme", "beta"}},
		{"keys-and-limits", map[string]string{"REPORTD_API_KEYS": "acme:0123456789abcdef", "REPORTD_RATE_LIMIT": "2.5", "REPORTD_MAX_OPEN_JOBS": "7"}, 2.5, 7, []string{"acme"}},
		{"keys-and-no-limits", map[string]string{"REPORTD_API_KEYS": "acme:0123456789abcdef", "REPORTD_RATE_LIMIT": "0", "REPORTD_MAX_OPEN_JOBS": "0"}, 0, 0, []string{"acme"}},
		{"open-and-limits", map[string]string{"REPORTD_RATE_LIMIT": "5", "REPORTD_MAX_OPEN_JOBS": "7"}, 5, 7, []string{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := loadConfig(env(tt.vars))
			if err != nil {
				t.Fatal(err)
			}
			if c.SubmitsPerSecond != tt.rate || c.MaxOpenJobs != tt.open {
				t.Errorf("limits %v/s and %d open jobs, want %v/s and %d", c.SubmitsPerSecond, c.MaxOpenJobs, tt.rate, tt.open)
			}
			if diff := cmp.Diff(tt.wantNames, clientNames(c.APIKeys)); diff != "" {
				t.Errorf("clients (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLoadConfigBadValues: a value that does not parse, or breaks a bound, is refused with an error
// that names the variable and says what it allows, and never quotes a secret.
func TestLoadConfigBadValues(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-never-shown"
	for _, tt := range []struct {
		name, variable, value string
		allowed               string // what the error must say is allowed
	}{
		{"duration", "REPORTD_RETENTION", "abc", `REPORTD_RETENTION="abc": want a Go duration such as 24h`},
		{"duration-bare-number", "REPORTD_JOB_TIMEOUT", "600", `REPORTD_JOB_TIMEOUT="600": want a Go duration`},
		{"duration-minimum", "REPORTD_JANITOR_INTERVAL", "10ms", `REPORTD_JANITOR_INTERVAL="10ms": must be at least 100ms`},
		{"duration-negative", "REPORTD_TOMBSTONE", "-1h", "must be at least 0s"},
		{"duration-maximum", "REPORTD_WEBHOOK_TIMEOUT", "2m", `REPORTD_WEBHOOK_TIMEOUT="2m": must be at most 1m`},
		{"whole-seconds", "REPORTD_RETENTION", "1500ms", "whole seconds"},
		{"int", "REPORTD_CONCURRENCY", "four", `REPORTD_CONCURRENCY="four": want a whole number`},
		{"int-minimum", "REPORTD_RATE_BURST", "0", "must be at least 1"},
		{"int-maximum", "REPORTD_QUEUE_SHARDS", "300", "must be at most 256"},
		{"float", "REPORTD_RATE_LIMIT", "fast", `REPORTD_RATE_LIMIT="fast": want a number`},
		{"float-negative", "REPORTD_RATE_LIMIT", "-1", "must be at least 0"},
		{"float-nan", "REPORTD_RATE_LIMIT", "NaN", "must be at least 0"},
		{"float-maximum", "REPORTD_RATE_LIMIT", "1e7", "must be at most 1000000"},
		{"bool", "REPORTD_ALLOW_OPEN", "yes", `REPORTD_ALLOW_OPEN="yes": must be true or false`},
		{"origins", "REPORTD_CORS_ORIGINS", "https://app.example/app", "want scheme://host[:port], or *"},
		{"host-ports", "REDIS_CLUSTER_ADDRS", "127.0.0.1", `"127.0.0.1" is not host:port`},
		{"host-ports-empty", "REDIS_CLUSTER_ADDRS", " , ", "no host:port"},
		{"schedule", "REPORTD_WEBHOOK_SCHEDULE", "5s,soon", `"soon" is not a positive duration: want Go durations, comma-separated`},
		{"schedule-not-positive", "REPORTD_WEBHOOK_SCHEDULE", "5s,0s", `"0s" is not a positive duration`},
		{"api-keys", "REPORTD_API_KEYS", "acme:" + secret[:8], "shorter than 16 characters"},
		{"api-keys-entry", "REPORTD_API_KEYS", secret, `not "name:key"`},
		{"webhook-secret", "REPORTD_WEBHOOK_SECRET", secret, `"whsec_<base64>"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := refused(t, map[string]string{tt.variable: tt.value}, tt.variable)
			if !strings.Contains(err.Error(), tt.allowed) {
				t.Errorf("error %q does not say %q", err, tt.allowed)
			}
			if strings.Contains(err.Error(), secret[:8]) {
				t.Errorf("error %q quotes the secret", err)
			}
		})
	}
}

// TestLoadConfigFiles: a _FILE variable stands for its variable, not beside it, and names itself in
// its errors.
func TestLoadConfigFiles(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing")
	refused(t, map[string]string{"REPORTD_API_KEYS": "acme:0123456789abcdef", "REPORTD_API_KEYS_FILE": writeFile(t, "keys", "acme:0123456789abcdef")},
		"REPORTD_API_KEYS and REPORTD_API_KEYS_FILE: set one, not both")
	refused(t, map[string]string{"REPORTD_API_KEYS_FILE": missing}, "REPORTD_API_KEYS_FILE: open "+missing)
	refused(t, map[string]string{"REPORTD_API_KEYS_FILE": writeFile(t, "keys", "acme:short\n")}, "REPORTD_API_KEYS_FILE: the key of client")
	// An empty keys file means no keys, as REPORTD_API_KEYS="" does.
	if c, err := loadConfig(env(map[string]string{"REPORTD_API_KEYS_FILE": writeFile(t, "keys", "\n")})); err != nil || len(c.APIKeys) != 0 {
		t.Errorf("an empty REPORTD_API_KEYS_FILE: %v, %d keys; want no keys", err, len(c.APIKeys))
	}
	refused(t, map[string]string{"REDIS_URL": "redis://127.0.0.1:6379", "REDIS_CLUSTER_ADDRS": "127.0.0.1:7000"}, "REDIS_URL and REDIS_CLUSTER_ADDRS: set one, not both")
}

// TestRedactedMasksEverySecret: every setting declared secret, set, is kept out of the redacted
// config's log line, and out of the line of a config that was not redacted.
func TestRedactedMasksEverySecret(t *testing.T) {
	t.Parallel()
	const secret = "Zs3cretZs3cretZs3cret"
	var c config
	rv := reflect.ValueOf(&c).Elem()
	n := 0
	for _, s := range settings {
		if !s.secret {
			continue
		}
		n++
		switch f := rv.FieldByIndex(s.field.Index); f.Interface().(type) {
		case string:
			f.SetString(secret)
			if s.name == "REDIS_URL" {
				f.SetString("redis://user:" + secret + "@localhost:6379/0")
			}
		case []httpapi.APIKey:
			f.Set(reflect.ValueOf([]httpapi.APIKey{httpapi.NewAPIKey("acme", secret)}))
		default:
			t.Fatalf("%s is secret, but this test cannot set a %s", s.name, s.field.Type)
		}
	}
	if n < 5 {
		t.Fatalf("%d settings are declared secret, want the Redis URL, the cluster's password, the API keys, the admin token and the webhook secret", n)
	}
	for _, cfg := range []config{c.redacted(), c} {
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", cfg)
		if strings.Contains(buf.String(), secret) || !strings.Contains(buf.String(), `"REPORTD_API_KEYS":["acme"]`) {
			t.Errorf("want every secret masked and the API keys by client name:\n%s", buf.String())
		}
	}
	if r := c.redacted(); strings.Contains(fmt.Sprintf("%+v", r), secret) {
		t.Errorf("the redacted config still holds a secret: %+v", r)
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
		{"REPORTD_CORS_ORIGINS", "https://app.example, http://localhost:5173", func(c *config) {
			c.CORSOrigins = []string{"https://app.example", "http://localhost:5173"}
		}},
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
		{"cors-origin-with-path", map[string]string{"REPORTD_CORS_ORIGINS": "https://app.example/app"}, []string{"REPORTD_CORS_ORIGINS"}},
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
			refused(t, tt.vars, tt.wants...)
		})
	}
}

// refused fails t unless loadConfig refuses vars with an error that names each of wants, and returns
// that error.
func refused(t *testing.T, vars map[string]string, wants ...string) error {
	t.Helper()
	_, err := loadConfig(env(vars))
	if err == nil {
		t.Fatalf("loadConfig(%v) succeeded, want an error", vars)
	}
	for _, name := range wants {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	return err
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

// writeCAFile writes a self-signed CA certificate as PEM into a temporary file and returns its path.
func writeCAFile(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
}

// writeFile writes content into a file of a temporary directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLoadConfigClusterAuth reads the cluster's user, password and TLS settings, each alongside
// REDIS_CLUSTER_ADDRS.
func TestLoadConfigClusterAuth(t *testing.T) {
	t.Parallel()
	ca := writeCAFile(t)
	tests := []struct {
		name string
		vars map[string]string
		set  func(*config)
	}{
		{"none", nil, func(*config) {}},
		{"username", map[string]string{"REDIS_CLUSTER_USERNAME": "reportd"}, func(c *config) { c.RedisClusterUsername = "reportd" }},
		{"password", map[string]string{"REDIS_CLUSTER_PASSWORD": " p@ss word "}, func(c *config) { c.RedisClusterPassword = " p@ss word " }},
		{
			"username-and-password",
			map[string]string{"REDIS_CLUSTER_USERNAME": "reportd", "REDIS_CLUSTER_PASSWORD": "s3cret"},
			func(c *config) { c.RedisClusterUsername, c.RedisClusterPassword = "reportd", "s3cret" },
		},
		{
			"password-file",
			map[string]string{"REDIS_CLUSTER_PASSWORD_FILE": writeFile(t, "pw", "s3cret\n")},
			func(c *config) { c.RedisClusterPassword = "s3cret" },
		},
		{
			"password-file-crlf",
			map[string]string{"REDIS_CLUSTER_PASSWORD_FILE": writeFile(t, "pw", "s3cret \r\n")},
			func(c *config) { c.RedisClusterPassword = "s3cret " },
		},
		{
			"password-file-no-newline",
			map[string]string{"REDIS_CLUSTER_PASSWORD_FILE": writeFile(t, "pw", "s3cret")},
			func(c *config) { c.RedisClusterPassword = "s3cret" },
		},
		{"tls", map[string]string{"REDIS_CLUSTER_TLS": "true"}, func(c *config) { c.RedisClusterTLS = true }},
		{"tls-off", map[string]string{"REDIS_CLUSTER_TLS": "false"}, func(*config) {}},
		{"ca-file-implies-tls", map[string]string{"REDIS_CLUSTER_TLS_CA_FILE": ca}, func(c *config) { c.RedisClusterTLS, c.RedisClusterCAFile = true, ca }},
		{
			"tls-and-ca-file",
			map[string]string{"REDIS_CLUSTER_TLS": "1", "REDIS_CLUSTER_TLS_CA_FILE": ca},
			func(c *config) { c.RedisClusterTLS, c.RedisClusterCAFile = true, ca },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{"REDIS_CLUSTER_ADDRS": "127.0.0.1:7000"}
			for k, v := range tt.vars {
				vars[k] = v
			}
			got, err := loadConfig(env(vars))
			if err != nil {
				t.Fatalf("loadConfig(%v): %v", tt.vars, err)
			}
			want := defaultConfig()
			want.RedisClusterAddrs = []string{"127.0.0.1:7000"}
			tt.set(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%v (-want +got):\n%s", tt.vars, diff)
			}
		})
	}
}

func TestLoadConfigClusterAuthInvalid(t *testing.T) {
	t.Parallel()
	const password = "s3cret-never-shown"
	addrs := "127.0.0.1:7000"
	notPEM := writeFile(t, "ca.pem", "not a certificate\n")
	keyOnly := writeFile(t, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("x")})))
	ca := writeCAFile(t)
	tests := []struct {
		name  string
		vars  map[string]string
		wants []string // every variable the error must name
	}{
		{
			"password-and-file",
			map[string]string{"REDIS_CLUSTER_ADDRS": addrs, "REDIS_CLUSTER_PASSWORD": password, "REDIS_CLUSTER_PASSWORD_FILE": writeFile(t, "pw", password)},
			[]string{"REDIS_CLUSTER_PASSWORD", "REDIS_CLUSTER_PASSWORD_FILE"},
		},
		{"password-without-addrs", map[string]string{"REDIS_CLUSTER_PASSWORD": password}, []string{"REDIS_CLUSTER_PASSWORD", "REDIS_CLUSTER_ADDRS"}},
		{
			"password-with-redis-url",
			map[string]string{"REDIS_URL": "redis://127.0.0.1:6379", "REDIS_CLUSTER_PASSWORD": password},
			[]string{"REDIS_CLUSTER_PASSWORD", "REDIS_CLUSTER_ADDRS"},
		},
		{"username-without-addrs", map[string]string{"REDIS_CLUSTER_USERNAME": "reportd"}, []string{"REDIS_CLUSTER_USERNAME"}},
		{"password-file-without-addrs", map[string]string{"REDIS_CLUSTER_PASSWORD_FILE": writeFile(t, "pw", password)}, []string{"REDIS_CLUSTER_PASSWORD_FILE"}},
		{"tls-without-addrs", map[string]string{"REDIS_CLUSTER_TLS": "true"}, []string{"REDIS_CLUSTER_TLS"}},
		{"tls-not-bool-without-addrs", map[string]string{"REDIS_CLUSTER_TLS": "yes please"}, []string{"REDIS_CLUSTER_TLS"}},
		{"ca-file-without-addrs", map[string]string{"REDIS_CLUSTER_TLS_CA_FILE": ca}, []string{"REDIS_CLUSTER_TLS_CA_FILE"}},
		{
			"password-file-missing",
			map[string]string{"REDIS_CLUSTER_ADDRS": addrs, "REDIS_CLUSTER_PASSWORD_FILE": filepath.Join(t.TempDir(), "missing")},
			[]string{"REDIS_CLUSTER_PASSWORD_FILE"},
		},
		{
			"password-file-empty",
			map[string]string{"REDIS_CLUSTER_ADDRS": addrs, "REDIS_CLUSTER_PASSWORD_FILE": writeFile(t, "pw", "\n")},
			[]string{"REDIS_CLUSTER_PASSWORD_FILE"},
		},
		{"tls-not-a-bool", map[string]string{"REDIS_CLUSTER_ADDRS": addrs, "REDIS_CLUSTER_TLS": "yes"}, []string{"REDIS_CLUSTER_TLS"}},
		{
			"ca-file-unreadable",
			map[string]string{"REDIS_CLUSTER_ADDRS": addrs, "REDIS_CLUSTER_TLS_CA_FILE": filepath.Join(t.TempDir(), "missing.pem")},
			[]string{"REDIS_CLUSTER_TLS_CA_FILE"},
		},
		{"ca-file-not-pem", map[string]string{"REDIS_CLUSTER_ADDRS": addrs, "REDIS_CLUSTER_TLS_CA_FILE": notPEM}, []string{"REDIS_CLUSTER_TLS_CA_FILE"}},
		{"ca-file-no-certificate", map[string]string{"REDIS_CLUSTER_ADDRS": addrs, "REDIS_CLUSTER_TLS_CA_FILE": keyOnly}, []string{"REDIS_CLUSTER_TLS_CA_FILE"}},
		{
			"ca-file-with-tls-off",
			map[string]string{"REDIS_CLUSTER_ADDRS": addrs, "REDIS_CLUSTER_TLS": "false", "REDIS_CLUSTER_TLS_CA_FILE": ca},
			[]string{"REDIS_CLUSTER_TLS", "REDIS_CLUSTER_TLS_CA_FILE"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := refused(t, tt.vars, tt.wants...); strings.Contains(err.Error(), password) {
				t.Errorf("error %q has the password", err)
			}
		})
	}
}

// TestConfigRedactedCluster: the cluster's password is logged as "xxxxx" when set and not at all when
// not, never as itself; its user, TLS and CA file are logged as they are.
func TestConfigRedactedCluster(t *testing.T) {
	t.Parallel()
	const password = "s3cret-never-logged"
	ca := writeCAFile(t)
	pwFile := writeFile(t, "pw", password+"\n")
	for _, tt := range []struct {
		name         string
		vars         map[string]string
		wantPassword string
		wantLogged   []string
	}{
		// No password and no TLS are the defaults, which the line leaves out.
		{"no-password", map[string]string{}, "", []string{`"config":{"REDIS_CLUSTER_ADDRS":["127.0.0.1:7000"]}`}},
		{
			"password",
			map[string]string{"REDIS_CLUSTER_USERNAME": "reportd", "REDIS_CLUSTER_PASSWORD": password},
			"xxxxx", []string{`"REDIS_CLUSTER_PASSWORD":"xxxxx"`, `"REDIS_CLUSTER_USERNAME":"reportd"`},
		},
		{
			"password-file-and-tls",
			map[string]string{"REDIS_CLUSTER_PASSWORD_FILE": pwFile, "REDIS_CLUSTER_TLS_CA_FILE": ca},
			"xxxxx", []string{`"REDIS_CLUSTER_PASSWORD":"xxxxx"`, `"REDIS_CLUSTER_TLS":true`, `"REDIS_CLUSTER_TLS_CA_FILE":` + strconv.Quote(ca)},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.vars["REDIS_CLUSTER_ADDRS"] = "127.0.0.1:7000"
			c, err := loadConfig(env(tt.vars))
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			r := c.redacted()
			if r.RedisClusterPassword != tt.wantPassword {
				t.Errorf("redacted RedisClusterPassword = %q, want %q", r.RedisClusterPassword, tt.wantPassword)
			}
			if c.RedisClusterPassword != "" && c.RedisClusterPassword != password {
				t.Errorf("RedisClusterPassword = %q, want %q: redacted must not change the config it is called on", c.RedisClusterPassword, password)
			}
			// As run logs it, and from a config that was not redacted, which must not leak either.
			for _, cfg := range []config{r, c} {
				var buf bytes.Buffer
				slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", cfg)
				if strings.Contains(buf.String(), password) {
					t.Errorf("the logged config has the password:\n%s", buf.String())
				}
				for _, w := range tt.wantLogged {
					if !strings.Contains(buf.String(), w) {
						t.Errorf("the logged config lacks %s:\n%s", w, buf.String())
					}
				}
			}
			r.RedisClusterPassword = c.RedisClusterPassword
			if diff := cmp.Diff(c, r); diff != "" {
				t.Errorf("redacted changed more than the password (-want +got):\n%s", diff)
			}
		})
	}
}

// TestClusterTLSOffWithoutCluster accepts REDIS_CLUSTER_TLS=false without a cluster: it asks for
// nothing, and a deployment template for either kind of Redis may say it.
func TestClusterTLSOffWithoutCluster(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"false", "0", "FALSE"} {
		if c, err := loadConfig(env(map[string]string{"REDIS_CLUSTER_TLS": v})); err != nil || c.RedisClusterTLS {
			t.Errorf("REDIS_CLUSTER_TLS=%s without REDIS_CLUSTER_ADDRS: %v (TLS %v), want accepted and off", v, err, c.RedisClusterTLS)
		}
	}
}

// TestLoggerWritesDurationsInWords: a duration in a JSON log line reads "1.5s", not 1500000000.
func TestLoggerWritesDurationsInWords(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, _ := newLogger(&buf)
	log.Info("report done", "took", 1500*time.Millisecond)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line %q: %v", buf.String(), err)
	}
	if line["took"] != "1.5s" {
		t.Errorf("took = %#v, want \"1.5s\"", line["took"])
	}
}

// TestStartLineListsChangedSettings: the starting line names the settings that differ from their
// defaults and no others, so a default start reads at a glance on a terminal.
func TestStartLineListsChangedSettings(t *testing.T) {
	t.Parallel()
	log := func(vars map[string]string) string {
		t.Helper()
		c, err := loadConfig(env(vars))
		if err != nil {
			t.Fatalf("loadConfig: %v", err)
		}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", c.redacted())
		return buf.String()
	}
	if got := log(nil); strings.Contains(got, `"config"`) {
		t.Errorf("a default start logs settings:\n%s", got)
	}
	got := log(map[string]string{"REPORTD_RETENTION": "2h", "REPORTD_MAX_RETRY": "3", "REPORTD_WEBHOOK_SECRET": "whsec_" + strings.Repeat("A", 32)})
	if !strings.Contains(got, `"config":{"REPORTD_RETENTION":"2h0m0s","REPORTD_WEBHOOK_SECRET":"whsec_xxxxx"}`) {
		t.Errorf("want the changed retention and the masked secret only (REPORTD_MAX_RETRY=3 is the default):\n%s", got)
	}
	if len(got) > 200 {
		t.Errorf("the line is %d characters long", len(got))
	}
}
