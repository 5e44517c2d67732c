package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/reportd/reportd/internal/httpapi"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/webhook"
)

// config is everything reportd reads from its environment, read once at start.
type config struct {
	Addr            string        // REPORTD_ADDR
	RedisURL        string        // REDIS_URL; empty means an embedded, non-durable Redis
	Retention       time.Duration // REPORTD_RETENTION
	Tombstone       time.Duration // REPORTD_TOMBSTONE
	Concurrency     int           // REPORTD_CONCURRENCY
	JobTimeout      time.Duration // REPORTD_JOB_TIMEOUT
	MaxRetry        int           // REPORTD_MAX_RETRY
	RowsPerDay      int           // REPORTD_ROWS_PER_DAY
	CheckInterval   time.Duration // REPORTD_CHECK_INTERVAL
	JanitorInterval time.Duration // REPORTD_JANITOR_INTERVAL
	ProgressEvery   time.Duration // REPORTD_PROGRESS_EVERY
	ShutdownTimeout time.Duration // REPORTD_SHUTDOWN_TIMEOUT
	DelayedCheck    time.Duration // REPORTD_DELAYED_CHECK_INTERVAL
	// QueueShards is REPORTD_QUEUE_SHARDS, the report queue's shards; 0: as many as the Redis has
	// masters (1 on a single Redis).
	QueueShards int

	RedisClusterAddrs    []string // REDIS_CLUSTER_ADDRS: host:port seeds of a Redis Cluster; excludes REDIS_URL
	RedisClusterUsername string   // REDIS_CLUSTER_USERNAME: the cluster's ACL user; empty: default
	RedisClusterPassword string   // REDIS_CLUSTER_PASSWORD, or REDIS_CLUSTER_PASSWORD_FILE's content
	RedisClusterTLS      bool     // REDIS_CLUSTER_TLS, or implied by REDIS_CLUSTER_TLS_CA_FILE
	RedisClusterCAFile   string   // REDIS_CLUSTER_TLS_CA_FILE: PEM CAs to trust instead of the system's

	AdminToken string // REPORTD_ADMIN_TOKEN, for /monitoring and /metrics; empty: one is generated
	OpsAddr    string // REPORTD_OPS_ADDR: address of /healthz, /readyz and /metrics alone; empty: none

	APIKeys   []httpapi.APIKey // REPORTD_API_KEYS or REPORTD_API_KEYS_FILE: name:key entries
	AllowOpen bool             // REPORTD_ALLOW_OPEN: serve a non-loopback address with no keys
	// CORSOrigins are the browser origins allowed to call the API (REPORTD_CORS_ORIGINS); none: no CORS.
	CORSOrigins []string

	SubmitsPerSecond float64 // REPORTD_RATE_LIMIT, per client; 0: none
	SubmitBurst      int     // REPORTD_RATE_BURST
	MaxOpenJobs      int     // REPORTD_MAX_OPEN_JOBS, per client; 0: none

	WebhookSecret        string          // REPORTD_WEBHOOK_SECRET, whsec_<base64>; empty: webhooks off
	WebhookAllowInsecure bool            // REPORTD_WEBHOOK_ALLOW_INSECURE
	WebhookAllowPrivate  bool            // REPORTD_WEBHOOK_ALLOW_PRIVATE
	WebhookSchedule      []time.Duration // REPORTD_WEBHOOK_SCHEDULE, comma-separated waits before each retry
	WebhookTimeout       time.Duration   // REPORTD_WEBHOOK_TIMEOUT, one attempt
	WebhookConcurrency   int             // REPORTD_WEBHOOK_CONCURRENCY
}

func defaultConfig() config {
	return config{
		Addr:        "localhost:8080",
		Retention:   24 * time.Hour,
		Tombstone:   720 * time.Hour,
		Concurrency: runtime.NumCPU(),
		JobTimeout:  10 * time.Minute,
		MaxRetry:    3,
		RowsPerDay:  report.DefaultRowsPerDay,
		// asynq's default of 1 s makes every job wait ~0.5 s for a worker; 20 ms makes it ~10 ms for
		// about 1% of a core and ~140 Redis commands a second per idle worker (see README).
		CheckInterval:   20 * time.Millisecond,
		JanitorInterval: 8 * time.Second,
		ProgressEvery:   250 * time.Millisecond,
		ShutdownTimeout: 20 * time.Second,
		// asynq's default of 5 s would round every short retry delay up to 5 s.
		DelayedCheck:       time.Second,
		WebhookSchedule:    webhook.DefaultSchedule,
		WebhookTimeout:     15 * time.Second,
		WebhookConcurrency: 16,
		// Open, with no API keys, nothing is limited unless asked (see clientLimits).
		SubmitBurst: 50,
	}
}

// The per-client limits of a service with API keys, unless set otherwise.
const (
	defaultRateLimit   = 20
	defaultMaxOpenJobs = 1000
)

// loadConfig reads the configuration from getenv. An invalid value is an error naming the variable.
func loadConfig(getenv func(string) string) (config, error) {
	c := defaultConfig()
	var errs []error
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	dur := func(name string, dst *time.Duration, min time.Duration) {
		v := getenv(name)
		if v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		if err == nil && d < min {
			err = fmt.Errorf("must be at least %s", min)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			return
		}
		*dst = d
	}
	num := func(name string, dst *int, min int) {
		v := getenv(name)
		if v == "" {
			return
		}
		n, err := strconv.Atoi(v)
		if err == nil && n < min {
			err = fmt.Errorf("must be at least %d", min)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			return
		}
		*dst = n
	}
	flag := func(name string, dst *bool) {
		v := getenv(name)
		if v == "" {
			return
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: must be true or false", name, v))
			return
		}
		*dst = b
	}
	str("REPORTD_ADDR", &c.Addr)
	str("REPORTD_OPS_ADDR", &c.OpsAddr)
	str("REDIS_URL", &c.RedisURL)
	if v := getenv("REDIS_CLUSTER_ADDRS"); v != "" {
		addrs, err := parseClusterAddrs(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("REDIS_CLUSTER_ADDRS=%q: %w", v, err))
		case c.RedisURL != "":
			errs = append(errs, errors.New("REDIS_URL and REDIS_CLUSTER_ADDRS: set one, not both"))
		default:
			c.RedisClusterAddrs = addrs
		}
	}
	errs = append(errs, loadClusterAuth(getenv, &c)...)
	dur("REPORTD_RETENTION", &c.Retention, time.Second)
	dur("REPORTD_TOMBSTONE", &c.Tombstone, 0)
	num("REPORTD_CONCURRENCY", &c.Concurrency, 1)
	dur("REPORTD_JOB_TIMEOUT", &c.JobTimeout, time.Second)
	num("REPORTD_MAX_RETRY", &c.MaxRetry, 0)
	num("REPORTD_ROWS_PER_DAY", &c.RowsPerDay, 1)
	dur("REPORTD_CHECK_INTERVAL", &c.CheckInterval, time.Millisecond)
	dur("REPORTD_JANITOR_INTERVAL", &c.JanitorInterval, 100*time.Millisecond)
	dur("REPORTD_PROGRESS_EVERY", &c.ProgressEvery, 0)
	dur("REPORTD_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout, time.Second)
	dur("REPORTD_DELAYED_CHECK_INTERVAL", &c.DelayedCheck, 10*time.Millisecond)
	str("REPORTD_ADMIN_TOKEN", &c.AdminToken)
	keys, keysFile := getenv("REPORTD_API_KEYS"), getenv("REPORTD_API_KEYS_FILE")
	switch {
	case keys != "" && keysFile != "":
		errs = append(errs, errors.New("REPORTD_API_KEYS and REPORTD_API_KEYS_FILE: set one, not both"))
	case keysFile != "":
		b, err := os.ReadFile(keysFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("REPORTD_API_KEYS_FILE: %w", err))
		}
		keys = string(b)
		fallthrough
	case keys != "":
		parsed, err := httpapi.ParseAPIKeys(keys)
		if err != nil {
			// The error names the client, never the key.
			errs = append(errs, fmt.Errorf("REPORTD_API_KEYS: %w", err))
		}
		c.APIKeys = parsed
	}
	flag("REPORTD_ALLOW_OPEN", &c.AllowOpen)
	if v := getenv("REPORTD_CORS_ORIGINS"); v != "" {
		origins, err := httpapi.ParseOrigins(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("REPORTD_CORS_ORIGINS: %w", err))
		}
		c.CORSOrigins = origins
	}
	if v := getenv("REPORTD_RATE_LIMIT"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1e6 {
			errs = append(errs, fmt.Errorf("REPORTD_RATE_LIMIT=%q: submissions a second per client, 0 for none", v))
		} else {
			c.SubmitsPerSecond = f
		}
	}
	num("REPORTD_RATE_BURST", &c.SubmitBurst, 1)
	num("REPORTD_MAX_OPEN_JOBS", &c.MaxOpenJobs, 0)
	str("REPORTD_WEBHOOK_SECRET", &c.WebhookSecret)
	if c.WebhookSecret != "" {
		if _, err := webhook.ParseSecret(c.WebhookSecret); err != nil {
			errs = append(errs, fmt.Errorf("REPORTD_WEBHOOK_SECRET: %w", err))
		}
	}
	flag("REPORTD_WEBHOOK_ALLOW_INSECURE", &c.WebhookAllowInsecure)
	flag("REPORTD_WEBHOOK_ALLOW_PRIVATE", &c.WebhookAllowPrivate)
	if v := getenv("REPORTD_WEBHOOK_SCHEDULE"); v != "" {
		var sched []time.Duration
		for _, part := range strings.Split(v, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(part))
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Errorf("REPORTD_WEBHOOK_SCHEDULE=%q: %q is not a positive duration", v, part))
				sched = nil
				break
			}
			sched = append(sched, d)
		}
		if sched != nil {
			c.WebhookSchedule = sched
		}
	}
	dur("REPORTD_WEBHOOK_TIMEOUT", &c.WebhookTimeout, time.Second)
	if c.WebhookTimeout > time.Minute {
		errs = append(errs, fmt.Errorf("REPORTD_WEBHOOK_TIMEOUT=%s: at most 1m", c.WebhookTimeout))
	}
	num("REPORTD_WEBHOOK_CONCURRENCY", &c.WebhookConcurrency, 1)
	num("REPORTD_QUEUE_SHARDS", &c.QueueShards, 1)
	if c.QueueShards > store.MaxShards {
		errs = append(errs, fmt.Errorf("REPORTD_QUEUE_SHARDS=%d: at most %d", c.QueueShards, store.MaxShards))
	}
	if c.Retention%time.Second != 0 {
		errs = append(errs, fmt.Errorf("REPORTD_RETENTION=%s: asynq keeps tasks for whole seconds", c.Retention))
	}
	// With API keys each client is limited by default. Open, with none, every request is one anonymous
	// client, so a per-client limit would be a limit on the whole service, met first by whoever tries it
	// out: open, reportd limits nothing unless asked to.
	if len(c.APIKeys) > 0 {
		if getenv("REPORTD_RATE_LIMIT") == "" {
			c.SubmitsPerSecond = defaultRateLimit
		}
		if getenv("REPORTD_MAX_OPEN_JOBS") == "" {
			c.MaxOpenJobs = defaultMaxOpenJobs
		}
	}
	return c, errors.Join(errs...)
}

// parseClusterAddrs reads REDIS_CLUSTER_ADDRS: comma-separated host:port seed nodes.
func parseClusterAddrs(v string) ([]string, error) {
	var addrs []string
	for _, a := range strings.Split(v, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		host, port, err := net.SplitHostPort(a)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%q is not host:port", a)
		}
		addrs = append(addrs, a)
	}
	if len(addrs) == 0 {
		return nil, errors.New("no host:port in it")
	}
	return addrs, nil
}

// clusterVars are the variables that shape the connection to a Redis Cluster: each needs
// REDIS_CLUSTER_ADDRS.
var clusterVars = []string{
	"REDIS_CLUSTER_USERNAME", "REDIS_CLUSTER_PASSWORD", "REDIS_CLUSTER_PASSWORD_FILE",
	"REDIS_CLUSTER_TLS", "REDIS_CLUSTER_TLS_CA_FILE",
}

// loadClusterAuth reads the cluster's credentials and TLS settings into c. An error never quotes the
// password.
func loadClusterAuth(getenv func(string) string, c *config) []error {
	if getenv("REDIS_CLUSTER_ADDRS") == "" {
		var errs []error
		for _, name := range clusterVars {
			if off, err := strconv.ParseBool(getenv(name)); name == "REDIS_CLUSTER_TLS" && err == nil && !off {
				continue // TLS off, said outright: harmless, as a template for both kinds of Redis may say it
			}
			if getenv(name) != "" {
				errs = append(errs, fmt.Errorf("%s is set without REDIS_CLUSTER_ADDRS: it is for a Redis Cluster only (for one Redis, put it in REDIS_URL)", name))
			}
		}
		return errs
	}
	var errs []error
	c.RedisClusterUsername = getenv("REDIS_CLUSTER_USERNAME")
	password, passwordFile := getenv("REDIS_CLUSTER_PASSWORD"), getenv("REDIS_CLUSTER_PASSWORD_FILE")
	switch {
	case password != "" && passwordFile != "":
		errs = append(errs, errors.New("REDIS_CLUSTER_PASSWORD and REDIS_CLUSTER_PASSWORD_FILE: set one, not both"))
	case passwordFile != "":
		b, err := os.ReadFile(passwordFile)
		switch p := strings.TrimRight(string(b), "\r\n"); {
		case err != nil:
			errs = append(errs, fmt.Errorf("REDIS_CLUSTER_PASSWORD_FILE: %w", err))
		case p == "":
			errs = append(errs, fmt.Errorf("REDIS_CLUSTER_PASSWORD_FILE: %s is empty", passwordFile))
		default:
			c.RedisClusterPassword = p
		}
	default:
		c.RedisClusterPassword = password
	}
	tlsOff := false // REDIS_CLUSTER_TLS=false, said outright
	if v := getenv("REDIS_CLUSTER_TLS"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("REDIS_CLUSTER_TLS=%q: must be true or false", v))
		}
		c.RedisClusterTLS, tlsOff = b, err == nil && !b
	}
	if ca := getenv("REDIS_CLUSTER_TLS_CA_FILE"); ca != "" {
		if tlsOff {
			errs = append(errs, errors.New("REDIS_CLUSTER_TLS=false and REDIS_CLUSTER_TLS_CA_FILE: a CA file is for TLS; unset one"))
		}
		if _, err := loadCAFile(ca); err != nil {
			errs = append(errs, fmt.Errorf("REDIS_CLUSTER_TLS_CA_FILE: %w", err))
		}
		c.RedisClusterTLS, c.RedisClusterCAFile = true, ca
	}
	return errs
}

// loadCAFile reads a PEM bundle of CA certificates.
func loadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// redacted is the configuration as it may be logged: the Redis URL without its password, and the
// cluster's password, the admin token and the webhook secret as "xxxxx". A URL that does not parse is
// hidden whole, since where its password is cannot be told.
func (c config) redacted() config {
	if c.WebhookSecret != "" {
		c.WebhookSecret = "whsec_xxxxx"
	}
	if c.AdminToken != "" {
		c.AdminToken = "xxxxx"
	}
	c.RedisClusterPassword = masked(c.RedisClusterPassword)
	if c.RedisURL == "" {
		return c
	}
	u, err := url.Parse(c.RedisURL)
	switch {
	case err != nil:
		c.RedisURL = "(not a valid URL; hidden)"
	case u.User != nil:
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			c.RedisURL = u.String()
		}
	}
	return c
}

// LogValue logs the settings that differ from their defaults (the README's table lists those), by
// variable name, durations as "24h0m0s" rather than nanoseconds: a default start logs a short line.
// Call it on a redacted config.
func (c config) LogValue() slog.Value {
	all, defaults := c.settings(), defaultConfig().settings()
	changed := make([]slog.Attr, 0, len(all))
	for i, a := range all {
		if a.Value.Resolve().String() != defaults[i].Value.Resolve().String() {
			changed = append(changed, a)
		}
	}
	return slog.GroupValue(changed...)
}

// settings is every setting of c by its variable's name, secrets masked, in the README's order.
func (c config) settings() []slog.Attr {
	return []slog.Attr{
		slog.String("REPORTD_ADDR", c.Addr),
		slog.String("REDIS_URL", c.RedisURL),
		slog.Any("REDIS_CLUSTER_ADDRS", c.RedisClusterAddrs),
		slog.String("REDIS_CLUSTER_USERNAME", c.RedisClusterUsername),
		// Masked here too: a password must not reach the log even from a config not redacted.
		slog.String("REDIS_CLUSTER_PASSWORD", masked(c.RedisClusterPassword)),
		slog.Bool("REDIS_CLUSTER_TLS", c.RedisClusterTLS),
		slog.String("REDIS_CLUSTER_TLS_CA_FILE", c.RedisClusterCAFile),
		slog.String("REPORTD_RETENTION", c.Retention.String()),
		slog.String("REPORTD_TOMBSTONE", c.Tombstone.String()),
		slog.Int("REPORTD_CONCURRENCY", c.Concurrency),
		slog.String("REPORTD_JOB_TIMEOUT", c.JobTimeout.String()),
		slog.Int("REPORTD_MAX_RETRY", c.MaxRetry),
		slog.Int("REPORTD_ROWS_PER_DAY", c.RowsPerDay),
		slog.String("REPORTD_CHECK_INTERVAL", c.CheckInterval.String()),
		slog.String("REPORTD_JANITOR_INTERVAL", c.JanitorInterval.String()),
		slog.String("REPORTD_PROGRESS_EVERY", c.ProgressEvery.String()),
		slog.String("REPORTD_SHUTDOWN_TIMEOUT", c.ShutdownTimeout.String()),
		slog.String("REPORTD_DELAYED_CHECK_INTERVAL", c.DelayedCheck.String()),
		slog.Int("REPORTD_QUEUE_SHARDS", c.QueueShards),
		slog.String("REPORTD_ADMIN_TOKEN", c.AdminToken),
		slog.String("REPORTD_OPS_ADDR", c.OpsAddr),
		slog.Any("REPORTD_API_KEYS", clientNames(c.APIKeys)),
		slog.Bool("REPORTD_ALLOW_OPEN", c.AllowOpen),
		slog.Any("REPORTD_CORS_ORIGINS", c.CORSOrigins),
		slog.Float64("REPORTD_RATE_LIMIT", c.SubmitsPerSecond),
		slog.Int("REPORTD_RATE_BURST", c.SubmitBurst),
		slog.Int("REPORTD_MAX_OPEN_JOBS", c.MaxOpenJobs),
		slog.String("REPORTD_WEBHOOK_SECRET", c.WebhookSecret),
		slog.Bool("REPORTD_WEBHOOK_ALLOW_INSECURE", c.WebhookAllowInsecure),
		slog.Bool("REPORTD_WEBHOOK_ALLOW_PRIVATE", c.WebhookAllowPrivate),
		slog.Any("REPORTD_WEBHOOK_SCHEDULE", durations(c.WebhookSchedule)),
		slog.String("REPORTD_WEBHOOK_TIMEOUT", c.WebhookTimeout.String()),
		slog.Int("REPORTD_WEBHOOK_CONCURRENCY", c.WebhookConcurrency),
	}
}

// masked is "xxxxx" for a secret that is set, "" for one that is not.
func masked(secret string) string {
	if secret == "" {
		return ""
	}
	return "xxxxx"
}

// clientNames lists the clients that have keys, which is all of the keys a log may show.
func clientNames(keys []httpapi.APIKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.Client
	}
	return out
}

func durations(ds []time.Duration) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}
