package impl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/httpapi"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/server"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/internal/webhook"
)

const (
	problemJSON = "application/problem+json"
	appJSON     = "application/json"
)

// contract is openapi.yaml as the server embeds it, with a router that finds each request's operation.
type contract struct {
	spec   *openapi3.T
	router routers.Router
}

// loadContract loads the spec once: every response of every test is checked against it.
var loadContract = sync.OnceValues(func() (*contract, error) {
	spec, err := gen.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("load embedded spec: %w", err)
	}
	// Without this the router matches only the hosts in servers, and httptest's 127.0.0.1:port is not one.
	spec.Servers = nil
	router, err := gorillamux.NewRouter(spec)
	if err != nil {
		return nil, fmt.Errorf("route the spec: %w", err)
	}
	return &contract{spec: spec, router: router}, nil
})

func mustContract(tb testing.TB) *contract {
	tb.Helper()
	c, err := loadContract()
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// checkRequest validates a request the test means to be valid, so that a case cannot pass only because
// the test sent something the contract does not allow.
func (c *contract) checkRequest(req *http.Request) error {
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("request %s %s: %w", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{MultiError: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if err := openapi3filter.ValidateRequest(req.Context(), in); err != nil {
		return fmt.Errorf("request %s %s does not match the contract: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

// checkExchange reports every way a response breaks the contract. Responses to operations in the spec are
// validated by openapi3filter (status, headers and body, 303s and problems included); responses on paths
// or methods the spec does not have must still be problems. Invariants the spec states in prose (no-store,
// Retry-After only while a job is pending or running, 303 to the result) are checked here too.
func (c *contract) checkExchange(req *http.Request, status int, header http.Header, body []byte) error {
	var errs []error
	route, params, err := c.router.FindRoute(req)
	switch {
	case err == nil:
		opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts},
			Status:                 status,
			Header:                 header,
			Options:                opts,
		}
		in.SetBodyBytes(body)
		if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
			errs = append(errs, fmt.Errorf("openapi3filter: %w", err))
		}
	case errors.Is(err, routers.ErrPathNotFound), errors.Is(err, routers.ErrMethodNotAllowed):
		// Outside the spec: nothing may answer anything but a problem.
		if status < 400 {
			errs = append(errs, fmt.Errorf("%s %s is outside the contract but answered %d", req.Method, req.URL.Path, status))
		}
	default:
		errs = append(errs, fmt.Errorf("find operation: %w", err))
	}
	if status >= 400 {
		if _, err := decodeProblem(status, header, body); err != nil {
			errs = append(errs, err)
		}
	}
	switch status {
	case http.StatusServiceUnavailable:
		if _, err := retryAfter(header); err != nil {
			errs = append(errs, fmt.Errorf("503: %w", err))
		}
	case http.StatusMethodNotAllowed:
		if header.Get("Allow") == "" {
			errs = append(errs, errors.New("405 without an Allow header"))
		}
	}
	if route != nil && route.Method == http.MethodGet && route.Path == "/v1/reports/{id}" {
		errs = append(errs, checkStatusInvariants(req, status, header, body))
	}
	return errors.Join(errs...)
}

// checkStatusInvariants checks what the spec says in prose about the status URL's 200 and 303.
func checkStatusInvariants(req *http.Request, status int, header http.Header, body []byte) error {
	if status != http.StatusOK && status != http.StatusSeeOther {
		return nil
	}
	var errs []error
	if cc := header.Get("Cache-Control"); cc != "no-store" {
		errs = append(errs, fmt.Errorf("status %d: Cache-Control is %q, want no-store", status, cc))
	}
	if status == http.StatusSeeOther {
		if loc := header.Get("Location"); !strings.EqualFold(loc, req.URL.Path+"/result") {
			errs = append(errs, fmt.Errorf("303: Location is %q, want %s/result", loc, req.URL.Path))
		}
		if header.Get("Retry-After") != "" {
			errs = append(errs, errors.New("303 carries a Retry-After"))
		}
		return errors.Join(errs...)
	}
	var st gen.JobStatus
	if err := json.Unmarshal(body, &st); err != nil {
		return errors.Join(append(errs, fmt.Errorf("status 200: decode: %w", err))...)
	}
	_, raErr := retryAfter(header)
	switch st.Status {
	case gen.Pending, gen.Running:
		if raErr != nil {
			errs = append(errs, fmt.Errorf("status %s: %w", st.Status, raErr))
		}
		if st.Error != nil {
			errs = append(errs, fmt.Errorf("status %s carries an error", st.Status))
		}
	case gen.Failed:
		if header.Get("Retry-After") != "" {
			errs = append(errs, fmt.Errorf("failed status carries Retry-After %q", header.Get("Retry-After")))
		}
		if st.Error == nil {
			errs = append(errs, errors.New("failed status has no error"))
		}
	case gen.Done:
		errs = append(errs, errors.New("a done job answered 200 instead of 303"))
	}
	if !strings.EqualFold(st.Links.Self, req.URL.Path) {
		errs = append(errs, fmt.Errorf("links.self is %q, want %q", st.Links.Self, req.URL.Path))
	}
	return errors.Join(errs...)
}

// decodeProblem checks that a response is an RFC 9457 problem of the response's own status and returns it.
func decodeProblem(status int, header http.Header, body []byte) (gen.Problem, error) {
	mt, _, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil || mt != "application/problem+json" {
		return gen.Problem{}, fmt.Errorf("%d: Content-Type is %q, want application/problem+json", status, header.Get("Content-Type"))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return gen.Problem{}, fmt.Errorf("%d: problem body %q: %w", status, body, err)
	}
	for _, k := range []string{"type", "title", "status", "detail"} {
		if _, ok := fields[k]; !ok {
			return gen.Problem{}, fmt.Errorf("%d: problem %s has no %q", status, body, k)
		}
	}
	var p gen.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		return gen.Problem{}, fmt.Errorf("%d: problem body %s: %w", status, body, err)
	}
	if p.Type == "" || p.Title == "" || p.Detail == "" {
		return p, fmt.Errorf("%d: problem %s has an empty type, title or detail", status, body)
	}
	if p.Status != status {
		return p, fmt.Errorf("problem status %d in a %d response", p.Status, status)
	}
	return p, nil
}

// retryAfter parses a Retry-After the contract allows: an integer number of seconds from 1 to 30.
func retryAfter(h http.Header) (int, error) {
	v := h.Get("Retry-After")
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 30 {
		return 0, fmt.Errorf("Retry-After %q is not an integer from 1 to 30", v)
	}
	return n, nil
}

// response is a response whose body has been read and whose exchange was checked against the contract.
type response struct {
	Status int
	Header http.Header
	Body   []byte
	Took   time.Duration
}

// problem decodes r as a problem, failing the test if it is not one.
func (r *response) problem(tb testing.TB) gen.Problem {
	tb.Helper()
	p, err := decodeProblem(r.Status, r.Header, r.Body)
	if err != nil {
		tb.Fatalf("not a problem: %v", err)
	}
	return p
}

// jobStatus decodes r as a JobStatus.
func (r *response) jobStatus(tb testing.TB) gen.JobStatus {
	tb.Helper()
	var s gen.JobStatus
	if err := json.Unmarshal(r.Body, &s); err != nil {
		tb.Fatalf("decode JobStatus %s: %v", r.Body, err)
	}
	return s
}

// mediaType is the response's media type without parameters.
func (r *response) mediaType() string {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt
}

func (r *response) String() string {
	return fmt.Sprintf("%d %v %s", r.Status, r.Header, r.Body)
}

// clock is a settable clock for jobs.Deps.Now: the real time until set.
type clock struct{ fixed atomic.Pointer[time.Time] }

func (c *clock) Now() time.Time {
	if t := c.fixed.Load(); t != nil {
		return *t
	}
	return time.Now()
}

func (c *clock) Set(t time.Time) { c.fixed.Store(&t) }
func (c *clock) Reset()          { c.fixed.Store(nil) }

// setup says how a harness is built. The zero value is an API without a worker, with a day's retention.
type setup struct {
	// Policy is the server's job policy; zero fields get test defaults.
	Policy jobs.Policy
	// Clock, if set, is the server's clock; otherwise it runs on the real time.
	Clock *clock
	// Worker runs an in-process asynq worker on the same Redis.
	Worker bool
	// Ledger is the worker's ledger; nil means a small synthetic one.
	Ledger report.Ledger
	// Handler replaces the worker's report processor.
	Handler asynq.Handler
	// Redis replaces the backend's client (for a Redis that cannot be reached).
	Redis *redis.Client
	// Waiters has the API subscribe to the store's finish and progress events, as cmd/reportd does, so
	// that Prefer: wait, event streams and a cancel are woken by events; without it they only re-read
	// now and then.
	Waiters bool
	// Heartbeat is jobs.Deps.Heartbeat: how often a quiet event stream sends a comment.
	Heartbeat time.Duration
	// Fallback is jobs.Deps.Fallback: how often a waiting request or a stream re-reads its job unwoken.
	Fallback time.Duration
	// APIKeys and Limits are jobs.Deps'; none means an open API, one anonymous client, without limits.
	APIKeys []httpapi.APIKey
	Limits  jobs.Limits
	// Webhooks sets webhooks up (any http or private callback URL accepted, deliveries read from the
	// store), without a webhook worker.
	Webhooks bool
	// WebhookPolicy, if set, sets jobs.Deps.Webhooks up with this policy rather than Webhooks', and gives
	// the worker's jobs the queue and the webhooks, so that the jobs it finishes schedule their webhooks.
	WebhookPolicy *webhook.Policy
	// WebhookSecret, if set, has the worker run a webhook worker that signs with it.
	WebhookSecret string
	// WrapTasks, if set, wraps the API's task reader, e.g. to count its reads.
	WrapTasks func(jobs.Inspector) jobs.Inspector
}

// smallRows is the synthetic ledger's rows a day in tests: enough to fill every region and product.
const smallRows = 200

// harness is the real reportd service (internal/server: the API, and optionally the workers) on real
// asynq and store.Store, on one Redis, served on a loopback port.
type harness struct {
	URL       string
	Redis     *redis.Client
	Store     *store.Store
	Inspector *asynq.Inspector
	Policy    jobs.Policy
	Log       *testkit.Buffer
	// Waiters is the server's, when setup.Waiters asked for them (nil otherwise).
	Waiters *jobs.Waiters
	// Metrics holds the server's series.
	Metrics *prometheus.Registry

	contract *contract
	client   *http.Client
}

// newHarness builds a harness on backend b (or s.Redis) and stops it when the test ends: the service
// as cmd/reportd wires it (internal/server), on a loopback listener.
func newHarness(tb testing.TB, b redistest.Backend, s setup) *harness {
	tb.Helper()
	c := mustContract(tb)
	logs, log := testkit.NewLog(tb, "server and worker log")

	rdb := s.Redis
	if rdb == nil {
		rdb = redis.NewClient(&redis.Options{Addr: b.Addr})
	}
	tb.Cleanup(func() { _ = rdb.Close() })

	p := s.Policy
	if p.Retention == 0 {
		p.Retention = 24 * time.Hour
	}
	if p.JobTimeout == 0 {
		p.JobTimeout = time.Minute
	}
	if p.Tombstone == 0 {
		p.Tombstone = time.Hour
	}
	s.Policy = p
	st := store.NewStore(rdb, p.Retention, p.Tombstone)
	svc := server.New(serverOptions(s, rdb, st, log))
	switch {
	case s.Worker:
		startWorkers(tb, svc.StartWorkers)
	case s.WebhookSecret != "":
		// Deliveries without a report worker: jobs stay pending until canceled.
		startWorkers(tb, func(context.Context) (func(), error) { return svc.StartDeliveries() })
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	api, err := svc.StartAPI(ctx, ln, svc.Ready(s.Worker), errc)
	if err != nil {
		cancel()
		tb.Fatalf("start the API: %v", err)
	}
	tb.Cleanup(func() {
		// Waiting requests answer at once; the rest within the drain.
		if err := api.Drain(5 * time.Second); err != nil {
			tb.Errorf("drain the API: %v", err)
		}
		api.Close()
		cancel()
		select {
		case err := <-errc:
			tb.Errorf("the API: %v", err)
		default:
		}
	})

	return &harness{
		URL:       "http://" + ln.Addr().String(),
		Redis:     rdb,
		Store:     st,
		Inspector: asynq.NewInspectorFromRedisClient(rdb),
		Policy:    p,
		Log:       logs,
		Waiters:   svc.Waiters(),
		Metrics:   svc.Registry(),
		contract:  c,
		client: &http.Client{
			Timeout: 10 * time.Second,
			// Go follows a 303 silently and would decode the report as a status.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// serverOptions is the wiring s asks for, on rdb and st: cmd/reportd's, with a test's intervals, a
// small ledger, and no refresh of the Retry-After estimates (tests count Redis commands).
func serverOptions(s setup, rdb *redis.Client, st *store.Store, log *slog.Logger) server.Options {
	o := server.Options{
		Redis:         rdb,
		Store:         st,
		Policy:        s.Policy,
		Limits:        s.Limits,
		API:           server.API{Keys: s.APIKeys, SkipEvents: !s.Waiters, SkipEstimates: true},
		Log:           log,
		Now:           time.Now,
		Heartbeat:     s.Heartbeat,
		Fallback:      s.Fallback,
		WrapInspector: s.WrapTasks,
		Worker: server.Worker{
			Ledger:          s.Ledger,
			Concurrency:     2,
			CheckInterval:   10 * time.Millisecond,
			DelayedCheck:    50 * time.Millisecond,
			JanitorInterval: 200 * time.Millisecond,
			ShutdownTimeout: 2 * time.Second,
			ProgressEvery:   20 * time.Millisecond,
			Handler:         s.Handler,
		},
	}
	if s.Clock != nil {
		o.Now = s.Clock.Now
	}
	if o.Worker.Ledger == nil {
		o.Worker.Ledger = report.NewSyntheticLedger(smallRows)
	}
	if s.Webhooks {
		o.Webhooks = &server.Webhooks{Policy: webhook.Policy{AllowInsecure: true, AllowPrivate: true}}
	}
	if s.WebhookPolicy != nil {
		o.Webhooks = &server.Webhooks{Policy: *s.WebhookPolicy, Secret: s.WebhookSecret, Concurrency: 2,
			Timeout: 5 * time.Second, Schedule: []time.Duration{time.Second}}
		o.Worker.CancelCheckEvery = 50 * time.Millisecond
	}
	return o
}

// startWorkers runs workers started by start until the test ends.
func startWorkers(tb testing.TB, start func(context.Context) (func(), error)) {
	tb.Helper()
	stop, err := start(context.Background())
	if err != nil {
		tb.Fatalf("start the workers: %v", err)
	}
	tb.Cleanup(stop)
}

// startWorker runs a worker of its own, wired as s says, on the harness's Redis until the test ends.
func (h *harness) startWorker(tb testing.TB, s setup) {
	tb.Helper()
	s.Policy = h.Policy
	startWorkers(tb, server.New(serverOptions(s, h.Redis, h.Store, h.logger().With("component", "worker"))).StartWorkers)
}

// request builds a request to the harness; body may be nil.
func (h *harness) request(tb testing.TB, method, path string, body io.Reader, header ...string) *http.Request {
	tb.Helper()
	req, err := http.NewRequest(method, h.URL+path, body)
	if err != nil {
		tb.Fatalf("new request: %v", err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

// do sends req and checks the exchange against the contract, failing the test on any violation. Every
// request of the suite goes through it (or through doer, which calls it).
func (h *harness) do(tb testing.TB, req *http.Request) *response {
	tb.Helper()
	start := time.Now()
	res, err := h.client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	r := &response{Status: res.StatusCode, Header: res.Header, Body: body, Took: time.Since(start)}
	if err := h.contract.checkExchange(req, r.Status, r.Header, r.Body); err != nil {
		tb.Errorf("%s %s answered %d, breaking the contract:\n%v\nresponse: %s", req.Method, req.URL.Path, r.Status, err, r)
	}
	return r
}

// doValid validates req against the contract before sending it with do.
func (h *harness) doValid(tb testing.TB, req *http.Request) *response {
	tb.Helper()
	if err := h.contract.checkRequest(req); err != nil {
		tb.Fatalf("the test sent an invalid request: %v", err)
	}
	return h.do(tb, req)
}

// doer is a gen.HttpRequestDoer that sends through do, so that the generated client is checked too.
type doer struct {
	tb testing.TB
	h  *harness
}

func (d doer) Do(req *http.Request) (*http.Response, error) {
	d.tb.Helper()
	r := d.h.doValid(d.tb, req)
	return &http.Response{
		Status:        strconv.Itoa(r.Status) + " " + http.StatusText(r.Status),
		StatusCode:    r.Status,
		Header:        r.Header,
		Body:          io.NopCloser(bytes.NewReader(r.Body)),
		ContentLength: int64(len(r.Body)),
		Request:       req,
	}, nil
}

// client is the client generated from the spec, sending through do.
func (h *harness) genClient(tb testing.TB) *gen.ClientWithResponses {
	tb.Helper()
	c, err := gen.NewClientWithResponses(h.URL, gen.WithHTTPClient(doer{tb: tb, h: h}))
	if err != nil {
		tb.Fatalf("generated client: %v", err)
	}
	return c
}

// create submits a report job over rng and returns its id, failing unless it is accepted.
func (h *harness) create(tb testing.TB, rng string) string {
	tb.Helper()
	r := h.doValid(tb, h.request(tb, http.MethodPost, "/v1/reports", strings.NewReader(`{"range":"`+rng+`"}`),
		"Content-Type", "application/json"))
	if r.Status != http.StatusAccepted {
		tb.Fatalf("POST %s: %s", rng, r)
	}
	id := strings.TrimPrefix(r.Header.Get("Location"), "/v1/reports/")
	if _, err := uuid.Parse(id); err != nil {
		tb.Fatalf("Location %q does not end in a job id: %v", r.Header.Get("Location"), err)
	}
	return id
}

// createDone submits a report job over rng and waits until it is done; it returns the job's id and its
// status URL's last answer, the 303.
func (h *harness) createDone(tb testing.TB, rng string) (string, *response) {
	tb.Helper()
	id := h.create(tb, rng)
	return id, h.poll(tb, id, 20*time.Millisecond, 10*time.Second, is303)
}

// get sends a GET with optional header pairs.
func (h *harness) get(tb testing.TB, path string, header ...string) *response {
	tb.Helper()
	return h.do(tb, h.request(tb, http.MethodGet, path, nil, header...))
}

// poll GETs the status URL of job id every interval until until returns true, and fails the test after
// timeout. It returns the last response. (A client would wait Retry-After, whole seconds from 1, between
// polls: the tests poll faster.)
func (h *harness) poll(tb testing.TB, id string, interval, timeout time.Duration, until func(*response) bool) *response {
	tb.Helper()
	var r *response
	testkit.Eventually(tb, timeout, interval, func() error {
		if r = h.get(tb, "/v1/reports/"+id); !until(r) {
			return fmt.Errorf("job %s: last answer: %s", id, r)
		}
		return nil
	})
	return r
}

// is303 is a poll condition: the job is done.
func is303(r *response) bool { return r.Status == http.StatusSeeOther }

// hasState is a poll condition: the status answers 200 with state s.
func hasState(tb testing.TB, s gen.JobState) func(*response) bool {
	return func(r *response) bool { return r.Status == http.StatusOK && r.jobStatus(tb).Status == s }
}

// slowLedger is a synthetic ledger that takes perDay for each day, so that a job runs long enough to be
// watched. Being a different type, it makes Summarize use the generic Ledger path.
type slowLedger struct {
	inner  *report.SyntheticLedger
	perDay time.Duration
}

func (l slowLedger) Day(ctx context.Context, day time.Time, buf []report.Order) ([]report.Order, error) {
	select {
	case <-ctx.Done():
		return buf, ctx.Err()
	case <-time.After(l.perDay):
	}
	return l.inner.Day(ctx, day, buf)
}

// gateLedger blocks every day until its gate opens or the job's context ends.
type gateLedger struct {
	inner *report.SyntheticLedger
	gate  chan struct{}
}

func (l gateLedger) Day(ctx context.Context, day time.Time, buf []report.Order) ([]report.Order, error) {
	select {
	case <-ctx.Done():
		return buf, fmt.Errorf("gate ledger: %w", ctx.Err())
	case <-l.gate:
	}
	return l.inner.Day(ctx, day, buf)
}

// failingLedger fails every day with err.
type failingLedger struct{ err error }

func (l failingLedger) Day(context.Context, time.Time, []report.Order) ([]report.Order, error) {
	return nil, l.err
}

// fixedLedger sells, each day, one order in each of the first three regions, of the first three
// products, with units and prices that follow the date, so that a golden file does not depend on the
// synthetic ledger's data.
type fixedLedger struct{}

func (fixedLedger) Day(_ context.Context, day time.Time, buf []report.Order) ([]report.Order, error) {
	d := day.Day()
	for i := range 3 {
		buf = append(buf, report.Order{Region: uint8(i), Product: uint8((d + i) % 3), Units: int64(d%4 + i + 1), UnitPriceCents: int64(100*d + 7*i)})
	}
	return buf, nil
}

var (
	_ report.Ledger = fixedLedger{}
	_ report.Ledger = slowLedger{}
	_ report.Ledger = gateLedger{}
	_ report.Ledger = failingLedger{}
)

var locationRE = regexp.MustCompile(`^/v1/reports/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)

// send is do for goroutines other than the test's: it returns what do would fail the test for.
func (h *harness) send(req *http.Request) (*response, error) {
	start := time.Now()
	res, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read body: %w", req.Method, req.URL.Path, err)
	}
	r := &response{Status: res.StatusCode, Header: res.Header, Body: body, Took: time.Since(start)}
	if err := h.contract.checkExchange(req, r.Status, r.Header, r.Body); err != nil {
		return r, fmt.Errorf("%s %s answered %d, breaking the contract:\n%w\nresponse: %s", req.Method, req.URL.Path, r.Status, err, r)
	}
	return r, nil
}

// post submits body (a valid request) with header pairs.
func (h *harness) post(tb testing.TB, body string, header ...string) *response {
	tb.Helper()
	return h.doValid(tb, h.request(tb, http.MethodPost, "/v1/reports", strings.NewReader(body),
		append([]string{"Content-Type", "application/json"}, header...)...))
}

// logged counts the server's and worker's log lines about job id with message msg.
func (h *harness) logged(id, msg string) int {
	n := 0
	for line := range strings.Lines(h.Log.String()) {
		if strings.Contains(line, `msg="`+msg+`"`) && strings.Contains(line, "job="+id) {
			n++
		}
	}
	return n
}

// logger is a logger into the harness's log, for parts a test starts itself.
func (h *harness) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(h.Log, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// locationID returns the job id of loc, a 202's Location, failing tb unless it is /v1/reports/{id}.
func locationID(tb testing.TB, loc string) string {
	tb.Helper()
	m := locationRE.FindStringSubmatch(loc)
	if m == nil {
		tb.Fatalf("Location %q is not /v1/reports/{id}", loc)
	}
	return m[1]
}

// jobIDOf returns the job id a Location names, failing the test if it names none.
func jobIDOf(t *testing.T, loc string) string {
	t.Helper()
	m := regexp.MustCompile(`^/v1/reports/([0-9a-f-]{36})(/result)?$`).FindStringSubmatch(loc)
	if m == nil {
		t.Fatalf("Location %q names no job", loc)
	}
	return m[1]
}
