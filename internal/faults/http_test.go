package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/testkit"
)

// newClient returns an HTTP client that shows a 303 instead of following it.
func newClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConns:        64,
			MaxIdleConnsPerHost: 32,
			IdleConnTimeout:     30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// exchange is one HTTP request and what came of it.
type exchange struct {
	method, url string
	sent, ended time.Time
	status      int
	header      http.Header
	body        []byte
	err         error
	// What the transport saw of the last attempt (it retries a replayable request once on a
	// connection the server closed before answering).
	conns     int  // connections it got: more than one means it retried
	reused    bool // the last connection was a kept-alive one
	wrote     bool // the request was written whole
	firstByte bool // some of the answer arrived
}

func (e exchange) took() time.Duration { return e.ended.Sub(e.sent) }

func (e exchange) String() string {
	if e.err != nil {
		return fmt.Sprintf("%s %s: error after %s: %v", e.method, e.url, e.took().Round(time.Millisecond), e.err)
	}
	return fmt.Sprintf("%s %s: %d in %s %s", e.method, e.url, e.status, e.took().Round(time.Millisecond), truncate(e.body, 300))
}

// failure classifies a failed exchange: "refused" (no connection could be made: nothing reached the
// server), "no-answer" (the request was written, the connection closed before any answer),
// "mid-answer" (the connection broke during the answer), "timeout", or "other".
func (e exchange) failure() string {
	switch {
	case e.err == nil:
		return ""
	case errors.Is(e.err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(e.err, context.DeadlineExceeded):
		return "timeout"
	case e.firstByte:
		return "mid-answer"
	case e.wrote:
		return "no-answer"
	default:
		return "other"
	}
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// do sends one request and reads the whole answer, within timeout.
func do(c *http.Client, method, url string, header map[string]string, body string, timeout time.Duration) exchange {
	e := exchange{method: method, url: url}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var mu sync.Mutex
	trace := &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) {
			mu.Lock()
			e.conns++
			e.reused, e.wrote, e.firstByte = i.Reused, false, false
			mu.Unlock()
		},
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			mu.Lock()
			e.wrote = i.Err == nil
			mu.Unlock()
		},
		GotFirstResponseByte: func() { mu.Lock(); e.firstByte = true; mu.Unlock() },
	}
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), method, url, r)
	if err != nil {
		panic(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	e.sent = time.Now()
	res, err := c.Do(req)
	if err == nil {
		e.status, e.header = res.StatusCode, res.Header
		e.body, err = io.ReadAll(res.Body)
		res.Body.Close()
	}
	e.ended = time.Now()
	mu.Lock()
	defer mu.Unlock()
	e.err = err
	return e
}

var statusPath = regexp.MustCompile(`^/v1/reports/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)

// post submits a report job over rng with extra headers.
func post(c *http.Client, base, rng string, header map[string]string) exchange {
	return do(c, http.MethodPost, base+"/v1/reports", header, `{"range":"`+rng+`"}`, 10*time.Second)
}

// accepted returns the job id of a 202, or "".
func accepted(e exchange) string {
	if e.err != nil || e.status != http.StatusAccepted {
		return ""
	}
	m := statusPath.FindStringSubmatch(e.header.Get("Location"))
	if m == nil {
		return ""
	}
	return m[1]
}

// submit POSTs a job and fails t unless it is accepted; it returns the job's id.
func submit(t *testing.T, c *http.Client, base, rng string) string {
	t.Helper()
	e := post(c, base, rng, nil)
	id := accepted(e)
	if id == "" {
		t.Fatalf("POST /v1/reports: %s; want 202 with a Location", e)
	}
	return id
}

// jobStatus is the part of a JobStatus these tests read.
type jobStatus struct {
	ID       string  `json:"id"`
	Status   string  `json:"status"`
	Progress float64 `json:"progress"`
	Attempt  int     `json:"attempt"`
	Error    *struct {
		Type, Title, Detail string
	} `json:"error"`
}

// statusOf reads a job's status: "done" for a 303, the status member for a 200, "" otherwise.
func statusOf(e exchange) (jobStatus, bool) {
	if e.err != nil {
		return jobStatus{}, false
	}
	switch e.status {
	case http.StatusSeeOther:
		return jobStatus{Status: "done", Progress: 1}, true
	case http.StatusOK:
		var s jobStatus
		if json.Unmarshal(e.body, &s) == nil {
			return s, true
		}
	}
	return jobStatus{}, false
}

func getStatus(c *http.Client, base, id string) exchange {
	return do(c, http.MethodGet, base+"/v1/reports/"+id, nil, "", 10*time.Second)
}

// poll is one status read by a poller.
type poll struct {
	at     time.Time
	status int    // 0 for a transport error
	state  string // the job's status member, "done" for a 303
	err    error
}

// poller reads a job's status every interval until stopped, and records every answer.
type poller struct {
	mu    sync.Mutex
	polls []poll
	done  chan struct{} // closed at the first 303
	stop  chan struct{}
	ended chan struct{}
}

// startPoller polls job id at base() (base may change, e.g. when the API is restarted) every interval.
func startPoller(t *testing.T, base func() string, id string, interval time.Duration) *poller {
	p := &poller{done: make(chan struct{}), stop: make(chan struct{}), ended: make(chan struct{})}
	c := newClient()
	go func() {
		defer close(p.ended)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		sawDone := false
		for {
			e := do(c, http.MethodGet, base()+"/v1/reports/"+id, nil, "", interval*4)
			s, _ := statusOf(e)
			p.mu.Lock()
			p.polls = append(p.polls, poll{at: e.sent, status: e.status, state: s.Status, err: e.err})
			p.mu.Unlock()
			if e.status == http.StatusSeeOther && !sawDone {
				sawDone = true
				close(p.done)
			}
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(p.halt)
	return p
}

func (p *poller) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.ended
}

// record returns the polls so far.
func (p *poller) record() []poll {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]poll(nil), p.polls...)
}

// summary counts polls by status code and job state, in order of first appearance: "200 running x12".
func summarize(polls []poll) string {
	type key struct {
		status int
		state  string
	}
	var order []key
	n := map[key]int{}
	for _, p := range polls {
		k := key{p.status, p.state}
		if p.err != nil {
			k.state = "error"
		}
		if n[k] == 0 {
			order = append(order, k)
		}
		n[k]++
	}
	var parts []string
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%d %s x%d", k.status, k.state, n[k]))
	}
	return strings.Join(parts, ", ")
}

// transitions lists when the polled answer changed: "+0.0s 200 running; +61.2s 200 pending; ...".
func transitions(polls []poll, from time.Time) string {
	var parts []string
	last := ""
	for _, p := range polls {
		cur := fmt.Sprintf("%d %s", p.status, p.state)
		if p.err != nil {
			cur = "error"
		}
		if cur != last {
			parts = append(parts, fmt.Sprintf("%+.1fs %s", p.at.Sub(from).Seconds(), cur))
			last = cur
		}
	}
	return strings.Join(parts, "; ")
}

// jobRef names a job and the API to ask about it (base may change, e.g. when the API is restarted).
type jobRef struct {
	base func() string
	id   string
}

// awaitJobs polls every job until it answers 303, or until timeout. It tolerates 503s and transport
// errors (Redis or reportd may be restarting). It returns when each job was first seen done (zero if
// never), each job's last answer, and the answers that were neither those nor a 200 pending or running.
func awaitJobs(c *http.Client, jobs []jobRef, timeout time.Duration) (done []time.Time, last, bad []string) {
	deadline := time.Now().Add(timeout)
	done, last = make([]time.Time, len(jobs)), make([]string, len(jobs))
	for open := len(jobs); open > 0; time.Sleep(100 * time.Millisecond) {
		for i, j := range jobs {
			if !done[i].IsZero() {
				continue
			}
			e := getStatus(c, j.base(), j.id)
			s, ok := statusOf(e)
			switch {
			case e.err != nil || e.status == http.StatusServiceUnavailable:
				last[i] = e.String()
			case e.status == http.StatusSeeOther:
				done[i] = e.ended
				last[i] = "done"
				open--
			case ok && (s.Status == "pending" || s.Status == "running"):
				last[i] = s.Status
			default:
				last[i] = e.String()
				bad = append(bad, fmt.Sprintf("job %s: %s", j.id, e))
				done[i] = time.Time{}
			}
		}
		if open == 0 || len(bad) > 0 || time.Now().After(deadline) {
			break
		}
	}
	return done, last, bad
}

// awaitAllDone polls every job in ids at base() until each answers 303 (see awaitJobs), and fails t
// on any other answer but a 200 pending or running, or when timeout passes. It returns when each job
// was first seen done.
func awaitAllDone(t *testing.T, c *http.Client, base func() string, ids []string, timeout time.Duration) map[string]time.Time {
	t.Helper()
	jobs := make([]jobRef, len(ids))
	for i, id := range ids {
		jobs[i] = jobRef{base: base, id: id}
	}
	done, last, bad := awaitJobs(c, jobs, timeout)
	if len(bad) > 0 {
		t.Fatalf("want 200 pending or running, or 303: %s", strings.Join(bad, "; "))
	}
	out := map[string]time.Time{}
	var open []string
	for i, id := range ids {
		if done[i].IsZero() {
			open = append(open, id+" ("+last[i]+")")
		}
		out[id] = done[i]
	}
	if len(open) > 0 {
		t.Fatalf("%d of %d jobs not done in %s: %s", len(open), len(ids), timeout, strings.Join(open, "; "))
	}
	return out
}

// expected caches the reports computed in the test process, by range and rows per day.
var expected sync.Map // string -> func() (report.Report, error)

// expectedReport is the report of rng over the synthetic ledger of rows per day, as a worker computes
// it, with no id and no generated_at.
func expectedReport(t *testing.T, rng string, rows int) report.Report {
	t.Helper()
	f, _ := expected.LoadOrStore(fmt.Sprint(rng, "@", rows), sync.OnceValues(func() (report.Report, error) {
		r, err := report.ParseRange(rng)
		if err != nil {
			return report.Report{}, err
		}
		return report.Summarize(context.Background(), report.NewSyntheticLedger(rows), r, time.Now(), nil)
	}))
	rep, err := f.(func() (report.Report, error))()
	if err != nil {
		t.Fatalf("summarize %s: %v", rng, err)
	}
	return rep
}

// checkResult fetches job id's result and fails t unless it is the report of rng over rows per day,
// with the job's id and a generated_at.
func checkResult(t *testing.T, c *http.Client, base, id, rng string, rows int) {
	t.Helper()
	e := do(c, http.MethodGet, base+"/v1/reports/"+id+"/result", nil, "", 10*time.Second)
	if e.err != nil || e.status != http.StatusOK {
		t.Errorf("job %s result: %s; want 200", id, e)
		return
	}
	var got report.Report
	if err := json.Unmarshal(e.body, &got); err != nil {
		t.Errorf("job %s result: %v\n%s", id, err, truncate(e.body, 300))
		return
	}
	if got.ID != id {
		t.Errorf("job %s result has id %q: the report of another job", id, got.ID)
	}
	if got.GeneratedAt.IsZero() {
		t.Errorf("job %s result has no generated_at", id)
	}
	want := expectedReport(t, rng, rows)
	want.ID, want.GeneratedAt = got.ID, got.GeneratedAt
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("job %s result differs from report.Summarize over %s at %d rows a day (-want +got):\n%s", id, rng, rows, diff)
	}
}

// countBy counts strings.
func countBy(xs []string) map[string]int {
	n := map[string]int{}
	for _, x := range xs {
		n[x]++
	}
	return n
}

// formatCounts renders a map of counts in key order.
func formatCounts[K comparable](m map[K]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%v: %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// awaitRunning waits up to 20 s for job id to be seen running with at least progress minProgress, and
// fails the test at once if the job is seen done before that.
func awaitRunning(t *testing.T, c *http.Client, base, id string, minProgress float64) {
	t.Helper()
	testkit.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		s, ok := statusOf(getStatus(c, base, id))
		if ok && s.Status == "done" {
			t.Fatalf("job %s not caught running (last %+v)", id, s)
		}
		if !ok || s.Status != "running" || s.Progress < minProgress {
			return fmt.Errorf("job %s not caught running (last %+v)", id, s)
		}
		return nil
	})
}
