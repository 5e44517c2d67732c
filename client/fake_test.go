package client

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// jobID is the job every fake answers about.
const jobID = "0f8fad5b-d9cb-469f-a165-70867728950e"

// seen is one request a fake received, and when.
type seen struct {
	at     time.Time
	method string
	path   string
	header http.Header
	body   string
}

// fake is a reportd stand-in whose answers a test scripts, one handler per request in order (the last
// one repeats), and that records what it was sent.
type fake struct {
	t        *testing.T
	mu       sync.Mutex
	requests []seen
	script   []http.HandlerFunc
	srv      *httptest.Server
}

func newFake(t *testing.T, script ...http.HandlerFunc) *fake {
	t.Helper()
	f := &fake{t: t, script: script}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	n := len(f.requests)
	f.requests = append(f.requests, seen{at: time.Now(), method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: string(body)})
	h := f.script[min(n, len(f.script)-1)]
	f.mu.Unlock()
	h(w, r)
}

// seen returns the requests so far.
func (f *fake) seen() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.requests...)
}

// client is a Client of the fake.
func (f *fake) client(opts ...Option) *Client {
	f.t.Helper()
	c, err := New(f.srv.URL, opts...)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// status answers 200 with a job status in state, and Retry-After ra unless it is "".
func status(state string, progress float64, ra string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		writeJSON(w, http.StatusOK, "application/json", jobStatus(state, progress, nil))
	}
}

// failed answers 200 with a failed job's status and its problem.
func failed(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, "application/json", jobStatus("failed", 0.4, map[string]any{
		"type": "/problems/report-failed", "title": "Report failed", "status": 500,
		"detail": "The job failed on every attempt it was given. Submitting it again may help.",
	}))
}

// seeOther answers 303 to the job's result, as the status URL of a done job does.
func seeOther(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Location", "/v1/reports/"+jobID+"/result")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Expires", "Thu, 02 Apr 2026 10:00:00 GMT")
	w.WriteHeader(http.StatusSeeOther)
}

// report answers 200 with the job's report.
func report(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, "application/json", map[string]any{
		"id": jobID, "range": map[string]string{"from": "2026-01-01", "to": "2026-01-02"},
		"generated_at": "2026-01-03T00:00:00Z", "orders": 30, "units": 70, "revenue_cents": 123456,
		"by_region":  []map[string]any{{"region": "north", "orders": 30, "units": 70, "revenue_cents": 123456}},
		"by_product": []map[string]any{{"product": "tea", "orders": 30, "units": 70, "revenue_cents": 123456}},
		"by_day": []map[string]any{
			{"date": "2026-01-01", "orders": 10, "units": 20, "revenue_cents": 23456},
			{"date": "2026-01-02", "orders": 20, "units": 50, "revenue_cents": 100000},
		},
	})
}

// problem answers with an RFC 9457 problem.
func problem(status int, slug, title, detail string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		writeJSON(w, status, "application/problem+json", map[string]any{
			"type": "/problems/" + slug, "title": title, "status": status, "detail": detail, "instance": r.URL.Path,
		})
	}
}

func jobStatus(state string, progress float64, problem map[string]any) map[string]any {
	st := map[string]any{
		"id": jobID, "status": state, "progress": progress,
		"range":      map[string]string{"from": "2026-01-01", "to": "2026-01-02"},
		"created_at": "2026-01-03T00:00:00Z",
		"links":      map[string]string{"self": "/v1/reports/" + jobID},
	}
	if problem != nil {
		st["error"] = problem
	}
	return st
}

// raw answers status with body, as it is, of contentType.
func raw(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
