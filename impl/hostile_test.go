package impl_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/server"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/internal/webhook"
)

// fuzzAPI is the whole API handler (validator, router, strict server) on real asynq and store.Store over
// an embedded Redis, as cmd/reportd wires it, for fuzzing: with keys and limits, webhooks set up, and
// its waiters drained so that Prefer: wait never holds an iteration.
type fuzzAPI struct {
	handler  http.Handler
	contract *contract
	store    *store.Store
	// acmeJob and globexJob are pending jobs of the two clients.
	acmeJob, globexJob string
}

func newFuzzAPI(f *testing.F) *fuzzAPI {
	f.Helper()
	b := redistest.Embedded(f)
	rdb := redis.NewClient(&redis.Options{Addr: b.Addr})
	f.Cleanup(func() { _ = rdb.Close() })
	st := store.NewStore(rdb, 24*time.Hour, time.Hour)
	svc := server.New(server.Options{
		Redis:    rdb,
		Store:    st,
		Policy:   jobs.Policy{Retention: 24 * time.Hour, Tombstone: time.Hour, JobTimeout: time.Minute},
		Limits:   jobs.Limits{SubmitsPerSecond: 1000, SubmitBurst: 1000, MaxOpenJobs: 50},
		API:      server.API{Keys: twoClients()},
		Log:      slog.New(slog.DiscardHandler),
		Webhooks: &server.Webhooks{Policy: webhook.Policy{AllowInsecure: true, AllowPrivate: true}},
	})
	// Drained: a Prefer: wait answers at once.
	svc.Waiters().Drain()
	handler, err := svc.Handler(svc.Ready(false))
	if err != nil {
		f.Fatal(err)
	}
	a := &fuzzAPI{handler: handler, contract: mustContract(f), store: st}
	for _, c := range []struct {
		key string
		id  *string
	}{{acmeKey, &a.acmeJob}, {globexKey, &a.globexJob}} {
		rec := a.serve(httptest.NewRequest(http.MethodPost, "/v1/reports", strings.NewReader(`{"range":"2026-Q1"}`)),
			"Content-Type", "application/json", "Authorization", "Bearer "+c.key)
		if rec.Code != http.StatusAccepted {
			f.Fatalf("create a job: %d %s", rec.Code, rec.Body)
		}
		*c.id = strings.TrimPrefix(rec.Header().Get("Location"), "/v1/reports/")
	}
	return a
}

// serve answers req, with header pairs set, in memory.
func (a *fuzzAPI) serve(req *http.Request, header ...string) *httptest.ResponseRecorder {
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] != "" {
			req.Header.Set(header[i], header[i+1])
		}
	}
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	return rec
}

// fuzzRequest builds a request as a server would have parsed it, or reports that these bytes cannot
// form one (httptest.NewRequest panics on what http.ReadRequest refuses).
func fuzzRequest(method, target string, body []byte) (req *http.Request, ok bool) {
	defer func() {
		if recover() != nil {
			req, ok = nil, false
		}
	}()
	if method == "" || strings.ContainsAny(target, " \r\n") {
		return nil, false
	}
	return httptest.NewRequest(method, target, bytes.NewReader(body)), true
}

// validHeaderValue reports whether v could arrive as one header value: net/http's server refuses
// control characters but tab, and a value cannot hold a line break.
func validHeaderValue(v string) bool {
	for i := range len(v) {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// checkAnswer fails t if an answer breaks what every answer must keep: no 5xx (Redis is up), and every
// 4xx a complete problem of its own status, with the headers its status needs.
func checkAnswer(t *testing.T, req *http.Request, rec *httptest.ResponseRecorder) {
	t.Helper()
	status, h, body := rec.Code, rec.Header(), rec.Body.Bytes()
	if status >= 500 {
		t.Fatalf("%s %q answered %d: %s", req.Method, req.URL, status, body)
	}
	if status < 400 {
		return
	}
	if _, err := decodeProblem(status, h, body); err != nil {
		t.Fatalf("%s %q: %v", req.Method, req.URL, err)
	}
	switch {
	case status == http.StatusUnauthorized && h.Get("WWW-Authenticate") != `Bearer realm="reportd"`:
		t.Fatalf("%s %q: 401 with WWW-Authenticate %q", req.Method, req.URL, h.Get("WWW-Authenticate"))
	case status == http.StatusMethodNotAllowed && h.Values("Allow") == nil:
		// An empty Allow is one: it says that the resource allows no method (RFC 9110, 10.2.1).
		t.Fatalf("%s %q: 405 without Allow", req.Method, req.URL)
	case status == http.StatusTooManyRequests && h.Get("Retry-After") == "":
		t.Fatalf("%s %q: 429 without Retry-After", req.Method, req.URL)
	}
}

// FuzzHandler feeds the whole API arbitrary requests: a method, a target, the headers that steer it and
// a body. Whatever comes in, nothing panics, nothing is a 5xx, and every refusal is a problem.
func FuzzHandler(f *testing.F) {
	a := newFuzzAPI(f)
	const json = "application/json"
	acme, globex := "Bearer "+acmeKey, "Bearer "+globexKey
	seeds := []struct {
		method, target, contentType, accept, prefer, idemKey, auth, ifNoneMatch, body string
	}{
		{"POST", "/v1/reports", json, "", "", "", acme, "", `{"range":"2026-Q1"}`},
		{"POST", "/v1/reports", json, "", "respond-async, wait=1", "key-1", acme, "", `{"range":"2026-02"}`},
		{"POST", "/v1/reports", json, "", "", "key-1", globex, "", `{"range":"2026-03"}`},
		{"POST", "/v1/reports", json, "", "", `"quoted"`, acme, "", `{"range":"2024-02-28..2024-03-01","callback_url":"http://127.0.0.1:9/h"}`},
		{"POST", "/v1/reports", json, "", "", "", acme, "", `{"range":"2026-Q1","range":"2026-Q2"}`},
		{"POST", "/v1/reports", json, "", "", "", acme, "", `{"range":"2026-Q1"`},
		{"POST", "/v1/reports", json, "", "", "", acme, "", "{\"range\":\"2026-Q1\xff\"}"},
		{"POST", "/v1/reports", json, "", "", "", acme, "", strings.Repeat("[", 100) + strings.Repeat("]", 100)},
		{"POST", "/v1/reports", "text/plain", "", "", "", acme, "", `{"range":"2026-Q1"}`},
		{"POST", "/v1/reports", "application/merge-patch+json", "", "", "", acme, "", `{"range":"2026-Q1"}`},
		{"POST", "/v1/reports", json + "; charset=latin1", "", "", "", acme, "", `{"range":"2026-Q1"}`},
		{"POST", "/v1/reports", json, "", "", "", "", "", `{"range":"2026-Q1"}`},
		{"POST", "/v1/reports", json, "", "", "", "Basic YWNtZTp4", "", `{"range":"2026-Q1"}`},
		{"GET", "/v1/reports", "", "", "", "", acme, "", ""},
		{"GET", "/v1/reports?status=done&limit=1", "", "", "", "", acme, "", ""},
		{"GET", "/v1/reports?cursor=djE6MQ&limit=100", "", "", "", "", globex, "", ""},
		{"GET", "/v1/reports?cursor=djE6LTE", "", "", "", "", acme, "", ""},
		{"GET", "/v1/reports?limit=0", "", "", "", "", acme, "", ""},
		{"GET", "/v1/reports/" + a.acmeJob, "", "", "wait=5", "", acme, "", ""},
		{"GET", "/v1/reports/" + a.globexJob, "", "", "", "", acme, "", ""},
		{"GET", "/v1/reports/" + strings.ToUpper(a.acmeJob), "", "", "", "", acme, "", ""},
		{"GET", "/v1/reports/" + a.acmeJob + "/result", "", "text/csv", "", "", acme, `"x"`, ""},
		{"GET", "/v1/reports/" + a.acmeJob + "/result", "", "image/png", "", "", acme, "*", ""},
		{"GET", "/v1/reports/" + a.acmeJob + "/webhook", "", "", "", "", acme, "", ""},
		{"DELETE", "/v1/reports/" + uuid.NewString(), "", "", "", "", acme, "", ""},
		{"POST", "/v1/reports/" + a.globexJob + "/cancel", json, "", "", "", acme, "", `{"x":1}`},
		{"HEAD", "/v1/reports/" + a.acmeJob, "", "", "", "", acme, "", ""},
		{"PUT", "/v1/reports", json, "", "", "", acme, "", `{}`},
		{"PATCH", "/v1/reports/" + a.acmeJob, json, "", "", "", acme, "", `{}`},
		{"OPTIONS", "*", "", "", "", "", "", "", ""},
		{"GET", "/v1/reports/../../etc/passwd", "", "", "", "", acme, "", ""},
		{"GET", "/v1/reports/%2e%2e/x", "", "", "", "", acme, "", ""},
		{"GET", "/v1/reports/%00", "", "", "", "", acme, "", ""},
		{"GET", "/v1/reports/%" + hex2(a.acmeJob[0]) + a.acmeJob[1:], "", "", "", "", acme, "", ""},
		{"GET", "/problems/invalid-request", "", "", "", "", "", "", ""},
		{"GET", "/problems/%2e%2e", "", "", "", "", "", "", ""},
		{"GET", "http://other.example/v1/reports", "", "", "", "", acme, "", ""},
		{"BREW", "/coffee", "", "", "", "", "", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.target, s.contentType, s.accept, s.prefer, s.idemKey, s.auth, s.ifNoneMatch, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method, target, contentType, accept, prefer, idemKey, auth, ifNoneMatch string, body []byte) {
		req, ok := fuzzRequest(method, target, body)
		if !ok {
			t.Skip("not a request")
		}
		header := []string{"Content-Type", contentType, "Accept", accept, "Prefer", prefer, "Idempotency-Key", idemKey,
			"Authorization", auth, "If-None-Match", ifNoneMatch}
		for i := 1; i < len(header); i += 2 {
			if !validHeaderValue(header[i]) {
				t.Skip("not a header value")
			}
		}
		rec := a.serve(req, header...)
		checkAnswer(t, req, rec)
	})
}

// FuzzJobID puts arbitrary ids in the job URLs, as acme: only acme's own job, however it is spelled,
// is ever found; anything else, globex's job included, is a 400 or 404 problem.
func FuzzJobID(f *testing.F) {
	a := newFuzzAPI(f)
	for _, id := range []string{
		a.acmeJob, strings.ToUpper(a.acmeJob), a.globexJob, "%" + hex2(a.acmeJob[0]) + a.acmeJob[1:],
		strings.ReplaceAll(a.acmeJob, "-", ""), "{" + a.acmeJob + "}", "urn:uuid:" + a.acmeJob, a.acmeJob + "%00",
		a.acmeJob + "/", a.acmeJob + "/..", "..", "%2e%2e", "../../etc/passwd", "%2e%2e%2fx", uuid.Nil.String(),
		"00000000-0000-0000-0000-00000000000g", "", " ", "%", "%zz", "a%2Fb", strings.Repeat("f", 1000), a.acmeJob + "?x=1",
		a.acmeJob + "#frag", "\x00", "é",
	} {
		for op := range uint8(6) {
			f.Add(op, id)
		}
	}
	ops := []struct{ method, suffix string }{
		{http.MethodGet, ""}, {http.MethodGet, "/result"}, {http.MethodGet, "/webhook"},
		{http.MethodHead, ""}, {http.MethodDelete, ""}, {http.MethodGet, "/nothing"},
	}
	f.Fuzz(func(t *testing.T, op uint8, id string) {
		o := ops[int(op)%len(ops)]
		req, ok := fuzzRequest(o.method, "/v1/reports/"+id+o.suffix, nil)
		if !ok {
			t.Skip("not a request")
		}
		rec := a.serve(req, "Authorization", "Bearer "+acmeKey)
		checkAnswer(t, req, rec)
		if rec.Code >= 400 && rec.Code != http.StatusGone && rec.Code != http.StatusConflict {
			return
		}
		seg, _, _ := strings.Cut(strings.TrimPrefix(req.URL.EscapedPath(), "/v1/reports/"), "/")
		found, err := url.PathUnescape(seg)
		if err != nil || !strings.EqualFold(found, a.acmeJob) {
			t.Fatalf("%s %q answered %d, but %q is not acme's job %s: %s", o.method, req.URL, rec.Code, seg, a.acmeJob, rec.Body)
		}
	})
}

// hex2 is b in two hex digits, for percent-encoding it.
func hex2(b byte) string { return fmt.Sprintf("%02X", b) }

// TestClientHangsUpDuringWait: a client that gives up on a Prefer: wait has done nothing wrong, and the
// server did not fail: no 5xx is logged as a failure or counted in the metrics.
func TestClientHangsUpDuringWait(t *testing.T) {
	t.Parallel()
	h := newHarness(t, redistest.Embedded(t), setup{})
	id := h.create(t, "2026-Q1")
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	req := h.request(t, http.MethodGet, "/v1/reports/"+id, nil, "Prefer", "wait=5")
	if _, err := http.DefaultClient.Do(req.WithContext(ctx)); err == nil {
		t.Fatal("a 5 s wait answered within 300 ms")
	}
	testkit.Eventually(t, 2*time.Second, 20*time.Millisecond, func() error {
		metrics := httptest.NewRecorder()
		promhttp.HandlerFor(h.Metrics, promhttp.HandlerOpts{}).ServeHTTP(metrics, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if !bytes.Contains(metrics.Body.Bytes(), []byte(`route="/v1/reports/{id}"`)) {
			return fmt.Errorf("the abandoned request was never counted:\n%s", metrics.Body)
		}
		if bytes.Contains(metrics.Body.Bytes(), []byte(`status="5`)) {
			t.Errorf("a client hanging up is counted as a server failure:\n%s", grepLines(metrics.Body.String(), `status="5`))
		}
		return nil
	})
	if strings.Contains(h.Log.String(), "level=ERROR") {
		t.Errorf("a client hanging up is logged as an error:\n%s", grepLines(h.Log.String(), "level=ERROR"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
