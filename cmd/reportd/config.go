package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"time"

	envparse "github.com/caarlos0/env/v11"

	"github.com/reportd/reportd/internal/httpapi"
	"github.com/reportd/reportd/internal/webhook"
)

// config is everything reportd reads from its environment, read once at start. Each field declares its
// variable (env), its default (envDefault, or docDefault where the default is computed at start), the
// bounds a value set must keep (min, max), a parser of reportd's own (parse), a variable naming a file
// that holds the value instead (envFile), and whether the value is a secret, never quoted in an error
// (secret). Its doc comment is the variable's line in docs/configuration.md, which TestConfigDocs
// generates from this declaration.
type config struct {
	// Address the API listens on (`127.0.0.1:0` picks a free port; the log says which).
	Addr string `env:"REPORTD_ADDR" envDefault:"localhost:8080"`
	// `host:port,...` seed nodes of a Redis Cluster, instead of `REDIS_URL`.
	RedisClusterAddrs []string `env:"REDIS_CLUSTER_ADDRS" parse:"host-ports"`
	// The cluster's ACL user.
	RedisClusterUsername string `env:"REDIS_CLUSTER_USERNAME" docDefault:"(none: default)"`
	// The cluster's password (logged as `xxxxx`).
	RedisClusterPassword string `env:"REDIS_CLUSTER_PASSWORD" envFile:"REDIS_CLUSTER_PASSWORD_FILE,notEmpty" secret:"true" docDefault:"(none)"`
	// TLS to every node of the cluster, trusting the system's CAs.
	RedisClusterTLS bool `env:"REDIS_CLUSTER_TLS" envDefault:"false"`
	// PEM bundle of the CAs to trust instead; turns TLS on.
	RedisClusterCAFile string `env:"REDIS_CLUSTER_TLS_CA_FILE" docDefault:"(none: the system's)"`
	// `redis://[:password@]host:port/db`, `rediss://` for TLS, `redis-sentinel://` ... (anything
	// `asynq.ParseRedisURI` accepts); unset, reportd runs an embedded, non-durable Redis.
	RedisURL string `env:"REDIS_URL" secret:"true" docDefault:"(embedded)"`

	// How long a finished job stays readable (whole seconds).
	Retention time.Duration `env:"REPORTD_RETENTION" envDefault:"24h" min:"1s"`
	// How long after that its id answers 410 instead of 404.
	Tombstone time.Duration `env:"REPORTD_TOMBSTONE" envDefault:"720h" min:"0s"`
	// Jobs a worker runs at once, spread over four asynq servers (fewer if it is under 4, one a shard if
	// there are more shards), so the web UI lists several for one process
	// ([operations.md](operations.md)).
	Concurrency int `env:"REPORTD_CONCURRENCY" min:"1" docDefault:"number of CPUs"`
	// Limit on one attempt of a job; past it the attempt fails.
	JobTimeout time.Duration `env:"REPORTD_JOB_TIMEOUT" envDefault:"10m" min:"1s"`
	// How many times a failed attempt is retried.
	MaxRetry int `env:"REPORTD_MAX_RETRY" envDefault:"3" min:"0"`
	// Orders a day in the synthetic ledger (`report.DefaultRowsPerDay`).
	RowsPerDay int `env:"REPORTD_ROWS_PER_DAY" envDefault:"36000000" min:"1"`
	// How often an idle worker looks for a job. asynq's default of 1s makes every job wait ~0.5s for a
	// worker; 20ms makes it ~10ms for about 1% of a core and ~140 Redis commands a second per idle
	// worker ([performance.md](performance.md)).
	CheckInterval time.Duration `env:"REPORTD_CHECK_INTERVAL" envDefault:"20ms" min:"1ms"`
	// How often a worker deletes tasks past their retention.
	JanitorInterval time.Duration `env:"REPORTD_JANITOR_INTERVAL" envDefault:"8s" min:"100ms"`
	// The least time between two progress writes of a job.
	ProgressEvery time.Duration `env:"REPORTD_PROGRESS_EVERY" envDefault:"250ms" min:"0s"`
	// How long draining may take.
	ShutdownTimeout time.Duration `env:"REPORTD_SHUTDOWN_TIMEOUT" envDefault:"20s" min:"1s"`
	// How often a worker moves due retries back to the queue (asynq's default of 5s would round every
	// short retry delay up to 5s).
	DelayedCheck time.Duration `env:"REPORTD_DELAYED_CHECK_INTERVAL" envDefault:"1s" min:"10ms"`
	// How many asynq queues the report jobs are spread over (see [cluster.md](cluster.md)); unset:
	// as many as the Redis has masters (1 on one Redis).
	QueueShards int `env:"REPORTD_QUEUE_SHARDS" min:"1" max:"256" docDefault:"1; on a cluster, one per master"`

	// `name:key` entries, one client each, separated by commas or (in the file) newlines; lines
	// starting with `#` are skipped. Client names are 1-64 of `[A-Za-z0-9_.-]`, keys at least 16
	// characters.
	APIKeys []httpapi.APIKey `env:"REPORTD_API_KEYS" envFile:"REPORTD_API_KEYS_FILE" parse:"api-keys" secret:"true" docDefault:"(none: open)"`
	// Serve a non-loopback address with no keys.
	AllowOpen bool `env:"REPORTD_ALLOW_OPEN" envDefault:"false"`
	// Browser origins allowed to call the API (`https://app.example,http://localhost:5173`, or `*`):
	// their preflights are answered and the answers' headers (`Location`, `Retry-After`, ...) made
	// readable.
	CORSOrigins []string `env:"REPORTD_CORS_ORIGINS" parse:"origins" docDefault:"(none)"`
	// Job submissions a second per client (0: no limit).
	SubmitsPerSecond float64 `env:"REPORTD_RATE_LIMIT" min:"0" max:"1000000" docDefault:"20 with API keys, none open"`
	// Submissions a client may make at once.
	SubmitBurst int `env:"REPORTD_RATE_BURST" envDefault:"50" min:"1"`
	// Unfinished jobs per client (0: no limit).
	MaxOpenJobs int `env:"REPORTD_MAX_OPEN_JOBS" min:"0" docDefault:"1000 with API keys, none open"`
	// The token for `/monitoring` and `/metrics`.
	AdminToken string `env:"REPORTD_ADMIN_TOKEN" secret:"true" docDefault:"(generated, logged once)"`
	// An extra address serving only `/healthz`, `/readyz` and `/metrics` (admin token), in any mode:
	// how a `reportd worker`, which serves no API, is probed and scraped.
	OpsAddr string `env:"REPORTD_OPS_ADDR" docDefault:"(none)"`

	// `whsec_<base64>`, the key that signs webhooks.
	WebhookSecret string `env:"REPORTD_WEBHOOK_SECRET" parse:"webhook-secret" secret:"true" docDefault:"(none: webhooks off)"`
	// Accept `http://` callback URLs.
	WebhookAllowInsecure bool `env:"REPORTD_WEBHOOK_ALLOW_INSECURE" envDefault:"false"`
	// Allow callbacks to loopback and private addresses.
	WebhookAllowPrivate bool `env:"REPORTD_WEBHOOK_ALLOW_PRIVATE" envDefault:"false"`
	// Waits before each retry of a failed delivery, comma-separated.
	WebhookSchedule []time.Duration `env:"REPORTD_WEBHOOK_SCHEDULE" envDefault:"5s,5m,30m,2h,5h,10h,10h" parse:"schedule"`
	// One delivery attempt's limit.
	WebhookTimeout time.Duration `env:"REPORTD_WEBHOOK_TIMEOUT" envDefault:"15s" min:"1s" max:"1m"`
	// Deliveries a worker makes at once.
	WebhookConcurrency int `env:"REPORTD_WEBHOOK_CONCURRENCY" envDefault:"16" min:"1"`
}

// The per-client limits of a service with API keys, unless set otherwise. Open, with none, every
// request is one anonymous client, so a per-client limit would be a limit on the whole service, met
// first by whoever tries it out: open, reportd limits nothing unless asked to.
const (
	defaultRateLimit   = 20
	defaultMaxOpenJobs = 1000
)

// defaultConfig is the configuration of an empty environment.
func defaultConfig() config {
	c, err := loadConfig(func(string) string { return "" })
	if err != nil {
		panic("the declared defaults do not load: " + err.Error())
	}
	return c
}

// setting is one field of config as its tags declare it.
type setting struct {
	field        reflect.StructField
	name         string // the variable
	file         string // the variable naming a file that holds the value instead, if any
	fileNotEmpty bool   // an empty file is refused
	parse        string // the key of its parser in parsers; "": env parses it
	secret       bool
	min, max     string // bounds of a value set, in the variable's syntax
}

// settings are config's fields in their order.
var settings = declaredSettings()

func declaredSettings() []setting {
	t := reflect.TypeFor[config]()
	out := make([]setting, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		file, opt, _ := strings.Cut(f.Tag.Get("envFile"), ",")
		out = append(out, setting{
			field: f, name: f.Tag.Get("env"), file: file, fileNotEmpty: opt == "notEmpty", parse: f.Tag.Get("parse"),
			secret: f.Tag.Get("secret") == "true", min: f.Tag.Get("min"), max: f.Tag.Get("max"),
		})
	}
	return out
}

// parsers read the variables whose values have a syntax of their own; each error says what is allowed.
var parsers = map[string]func(string) (any, error){
	"host-ports": func(v string) (any, error) { return parseClusterAddrs(v) },
	"origins":    func(v string) (any, error) { return httpapi.ParseOrigins(v) },
	"api-keys":   func(v string) (any, error) { return httpapi.ParseAPIKeys(v) },
	"schedule":   func(v string) (any, error) { return parseSchedule(v) },
	"webhook-secret": func(v string) (any, error) {
		_, err := webhook.ParseSecret(v)
		return v, err
	},
}

// wants say what a value of each type env parses must look like.
var wants = map[reflect.Type]string{
	reflect.TypeFor[bool]():          "must be true or false",
	reflect.TypeFor[int]():           "want a whole number",
	reflect.TypeFor[float64]():       "want a number such as 2.5",
	reflect.TypeFor[time.Duration](): "want a Go duration such as 24h",
}

// loadConfig reads the configuration from getenv. An invalid value is an error naming the variable and
// what it allows; a secret's value is never quoted.
func loadConfig(getenv func(string) string) (config, error) {
	var errs []error
	raw := map[string]string{}    // the variables set, by name; a file's content under its variable's
	source := map[string]string{} // where each value in raw came from: its variable, or its file's
	for _, s := range settings {
		v, from, err := lookup(getenv, s)
		if err != nil {
			errs = append(errs, err)
		} else if v != "" {
			raw[s.name], source[s.name] = v, from
		}
	}
	bad := func(s setting, problem string) error {
		if s.secret || source[s.name] != s.name {
			return fmt.Errorf("%s: %s", source[s.name], problem)
		}
		return fmt.Errorf("%s=%q: %s", s.name, raw[s.name], problem)
	}

	forEnv := map[string]string{} // what env parses: all but the variables of reportd's own parsers
	for _, s := range settings {
		if v, ok := raw[s.name]; ok && s.parse == "" {
			forEnv[s.name] = v
		}
	}
	var c config
	failed := map[string]bool{}
	if err := envparse.ParseWithOptions(&c, envparse.Options{Environment: forEnv}); err != nil {
		for _, e := range unjoin(err) {
			var pe envparse.ParseError
			if !errors.As(e, &pe) {
				errs = append(errs, e)
				continue
			}
			s := settingOf(pe.Name)
			failed[s.name] = true
			errs = append(errs, bad(s, wants[s.field.Type]))
		}
	}
	rv := reflect.ValueOf(&c).Elem()
	for _, s := range settings {
		v, ok := raw[s.name]
		switch {
		case !ok || failed[s.name]:
		case s.parse != "":
			parsed, err := parsers[s.parse](v)
			if err != nil {
				errs = append(errs, bad(s, err.Error()))
				continue
			}
			rv.FieldByIndex(s.field.Index).Set(reflect.ValueOf(parsed))
		default:
			if problem := outOfBounds(s, rv.FieldByIndex(s.field.Index)); problem != "" {
				errs = append(errs, bad(s, problem))
			}
		}
	}
	errs = append(errs, checkCombinations(&c, getenv)...)

	if _, ok := raw["REPORTD_CONCURRENCY"]; !ok {
		c.Concurrency = runtime.NumCPU()
	}
	if len(c.APIKeys) > 0 {
		if _, ok := raw["REPORTD_RATE_LIMIT"]; !ok {
			c.SubmitsPerSecond = defaultRateLimit
		}
		if _, ok := raw["REPORTD_MAX_OPEN_JOBS"]; !ok {
			c.MaxOpenJobs = defaultMaxOpenJobs
		}
	}
	return c, errors.Join(errs...)
}

// lookup reads s's value: its variable's, or the content of the file its file variable names (without
// trailing newlines). from is the variable the value came from.
func lookup(getenv func(string) string, s setting) (v, from string, err error) {
	v = getenv(s.name)
	if s.file == "" {
		return v, s.name, nil
	}
	path := getenv(s.file)
	switch {
	case path == "":
		return v, s.name, nil
	case v != "":
		return "", "", fmt.Errorf("%s and %s: set one, not both", s.name, s.file)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", s.file, err)
	}
	v = strings.TrimRight(string(b), "\r\n")
	if v == "" && s.fileNotEmpty {
		return "", "", fmt.Errorf("%s: %s is empty", s.file, path)
	}
	return v, s.file, nil
}

// unjoin lists the errors err gathers (envparse returns an AggregateError).
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// settingOf is the setting of the config field named field.
func settingOf(field string) setting {
	for _, s := range settings {
		if s.field.Name == field {
			return s
		}
	}
	panic("no config field " + field)
}

// outOfBounds says how v, the value set for s, breaks s's min or max, if it does; "" if it does not.
// A NaN breaks every bound.
func outOfBounds(s setting, v reflect.Value) string {
	below := func(bound string) bool {
		switch s.field.Type {
		case reflect.TypeFor[time.Duration]():
			d, _ := time.ParseDuration(bound)
			return time.Duration(v.Int()) < d
		case reflect.TypeFor[int]():
			n, _ := strconv.Atoi(bound)
			return int(v.Int()) < n
		case reflect.TypeFor[float64]():
			f, _ := strconv.ParseFloat(bound, 64)
			return !(v.Float() >= f)
		}
		panic("no bounds for " + s.field.Type.String())
	}
	above := func(bound string) bool {
		switch s.field.Type {
		case reflect.TypeFor[time.Duration]():
			d, _ := time.ParseDuration(bound)
			return time.Duration(v.Int()) > d
		case reflect.TypeFor[int]():
			n, _ := strconv.Atoi(bound)
			return int(v.Int()) > n
		case reflect.TypeFor[float64]():
			f, _ := strconv.ParseFloat(bound, 64)
			return !(v.Float() <= f)
		}
		panic("no bounds for " + s.field.Type.String())
	}
	switch {
	case s.min != "" && below(s.min):
		return "must be at least " + s.min
	case s.max != "" && above(s.max):
		return "must be at most " + s.max
	}
	return ""
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

// parseSchedule reads REPORTD_WEBHOOK_SCHEDULE: comma-separated positive durations.
func parseSchedule(v string) ([]time.Duration, error) {
	var sched []time.Duration
	for _, part := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%q is not a positive duration: want Go durations, comma-separated, such as 5s,5m,30m", part)
		}
		sched = append(sched, d)
	}
	return sched, nil
}

// clusterVars are the variables that shape the connection to a Redis Cluster: each needs
// REDIS_CLUSTER_ADDRS.
var clusterVars = []string{
	"REDIS_CLUSTER_USERNAME", "REDIS_CLUSTER_PASSWORD", "REDIS_CLUSTER_PASSWORD_FILE",
	"REDIS_CLUSTER_TLS", "REDIS_CLUSTER_TLS_CA_FILE",
}

// checkCombinations checks what no one variable can say alone, and derives what follows from several:
// a CA file turns the cluster's TLS on. An error never quotes a secret.
func checkCombinations(c *config, getenv func(string) string) []error {
	var errs []error
	if c.Retention >= time.Second && c.Retention%time.Second != 0 { // shorter is refused by its minimum
		errs = append(errs, fmt.Errorf("REPORTD_RETENTION=%s: asynq keeps tasks for whole seconds", c.Retention))
	}
	cluster := getenv("REDIS_CLUSTER_ADDRS") != ""
	if cluster && getenv("REDIS_URL") != "" {
		errs = append(errs, errors.New("REDIS_URL and REDIS_CLUSTER_ADDRS: set one, not both"))
	}
	// REDIS_CLUSTER_TLS=false, said outright: harmless without a cluster, as a template for both kinds
	// of Redis may say it.
	tls, err := strconv.ParseBool(getenv("REDIS_CLUSTER_TLS"))
	tlsOff := err == nil && !tls
	if !cluster {
		for _, name := range clusterVars {
			if getenv(name) != "" && (name != "REDIS_CLUSTER_TLS" || !tlsOff) {
				errs = append(errs, fmt.Errorf("%s is set without REDIS_CLUSTER_ADDRS: it is for a Redis Cluster only (for one Redis, put it in REDIS_URL)", name))
			}
		}
		return errs
	}
	if ca := c.RedisClusterCAFile; ca != "" {
		if tlsOff {
			errs = append(errs, errors.New("REDIS_CLUSTER_TLS=false and REDIS_CLUSTER_TLS_CA_FILE: a CA file is for TLS; unset one"))
		}
		if _, err := loadCAFile(ca); err != nil {
			errs = append(errs, fmt.Errorf("REDIS_CLUSTER_TLS_CA_FILE: %w", err))
		}
		c.RedisClusterTLS = true
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

// LogValue logs the settings that differ from their defaults (docs/configuration.md lists those), by
// variable name, durations as "24h0m0s" rather than nanoseconds, secrets masked as redacted masks them
// (whether or not c is redacted) and API keys by client name: a default start logs a short line.
func (c config) LogValue() slog.Value {
	all, defaults := c.redacted().attrs(), defaultConfig().redacted().attrs()
	changed := make([]slog.Attr, 0, len(all))
	for i, a := range all {
		if a.Value.Resolve().String() != defaults[i].Value.Resolve().String() {
			changed = append(changed, a)
		}
	}
	return slog.GroupValue(changed...)
}

// attrs is every setting of c by its variable's name, in the declaration's order.
func (c config) attrs() []slog.Attr {
	rv := reflect.ValueOf(c)
	out := make([]slog.Attr, len(settings))
	for i, s := range settings {
		switch v := rv.FieldByIndex(s.field.Index).Interface().(type) {
		case time.Duration:
			out[i] = slog.String(s.name, v.String())
		case []time.Duration:
			out[i] = slog.Any(s.name, durations(v))
		case []httpapi.APIKey:
			out[i] = slog.Any(s.name, clientNames(v))
		default:
			out[i] = slog.Any(s.name, v)
		}
	}
	return out
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
