package impl_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/httpapi"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/tasks"
)

// The two clients of the multi-client tests, and a key that is neither's.
const (
	acmeKey   = "acme-0123456789-SECRET-key"
	globexKey = "globex-9876543210-SECRET-key"
	wrongKey  = "intruder-5555555555-SECRET-key"
)

func twoClients() []httpapi.APIKey {
	return []httpapi.APIKey{httpapi.NewAPIKey("acme", acmeKey), httpapi.NewAPIKey("globex", globexKey)}
}

// as sends a request with Authorization: Bearer key (none when key is ""), a JSON body when body is not
// empty, and header pairs; the exchange is checked against the contract.
func (h *harness) as(tb testing.TB, key, method, path, body string, header ...string) *response {
	tb.Helper()
	var req *http.Request
	if body != "" {
		req = h.request(tb, method, path, strings.NewReader(body), append([]string{"Content-Type", "application/json"}, header...)...)
	} else {
		req = h.request(tb, method, path, nil, header...)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return h.do(tb, req)
}

// createAs submits a job over rng as the client of key and returns its id, failing unless it is
// accepted.
func (h *harness) createAs(tb testing.TB, key, rng string, header ...string) string {
	tb.Helper()
	r := h.as(tb, key, http.MethodPost, "/v1/reports", `{"range":"`+rng+`"}`, header...)
	if r.Status != http.StatusAccepted {
		tb.Fatalf("POST %s: %s", rng, r)
	}
	return r.jobStatus(tb).Id.String()
}

// listAs lists every job the client of key sees, following next, and returns their ids in order.
func (h *harness) listAs(tb testing.TB, key, query string) []string {
	tb.Helper()
	var ids []string
	path := "/v1/reports" + query
	for range 100 {
		r := h.as(tb, key, http.MethodGet, path, "")
		if r.Status != http.StatusOK {
			tb.Fatalf("GET %s: %s", path, r)
		}
		l := jobList(tb, r)
		for _, it := range l.Items {
			ids = append(ids, it.Id.String())
		}
		if l.Next == nil {
			return ids
		}
		path = *l.Next
	}
	tb.Fatalf("GET /v1/reports%s: still a next page after 100 pages", query)
	return nil
}

func jobList(tb testing.TB, r *response) gen.JobList {
	tb.Helper()
	var l gen.JobList
	if err := json.Unmarshal(r.Body, &l); err != nil {
		tb.Fatalf("decode JobList %s: %v", r.Body, err)
	}
	return l
}

// checkUnauthorized fails t unless r is a 401 problem asking for a bearer key.
func checkUnauthorized(t *testing.T, what string, r *response) {
	t.Helper()
	if !checkProblemOf(t, what, r, http.StatusUnauthorized, "/problems/unauthorized") {
		return
	}
	if got := r.Header.Get("WWW-Authenticate"); got != `Bearer realm="reportd"` {
		t.Errorf(`%s: WWW-Authenticate = %q, want Bearer realm="reportd"`, what, got)
	}
}

// checkJobNotFound fails t unless r is the 404 of a job that was never issued to the caller.
func checkJobNotFound(t *testing.T, what string, r *response) {
	t.Helper()
	checkProblemOf(t, what, r, http.StatusNotFound, "/problems/job-not-found")
}

// checkProblemOf fails t unless r answers status with a problem of type typ; it says whether the status
// was right (the problem's type is checked only then).
func checkProblemOf(t *testing.T, what string, r *response, status int, typ string) bool {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: %s, want %d", what, r, status)
		return false
	}
	if p := r.problem(t); p.Type != typ {
		t.Errorf("%s: problem type %q, want %s", what, p.Type, typ)
	}
	return true
}

// TestAuthRefused sends every operation without a key, with a wrong one and in other schemes: each is
// a 401 problem with the bearer challenge, and changes nothing.
func TestAuthRefused(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{APIKeys: twoClients(), Webhooks: true})
		id := h.createAs(t, acmeKey, "2026-Q1")
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("acme:"+acmeKey))
		auths := []struct{ name, header string }{
			{"none", ""},
			{"wrong-key", "Bearer " + wrongKey},
			{"key-with-suffix", "Bearer " + acmeKey + "x"},
			{"key-truncated", "Bearer " + acmeKey[:len(acmeKey)-1]},
			{"two-keys", "Bearer " + acmeKey + " " + globexKey},
			{"basic", basic},
			{"no-scheme", acmeKey},
			{"token-scheme", "Token " + acmeKey},
			{"empty-bearer", "Bearer "},
			{"bearer-alone", "Bearer"},
			{"client-name", "Bearer acme"},
		}
		ops := []struct{ method, path, body string }{
			{http.MethodGet, "/v1/reports", ""},
			{http.MethodPost, "/v1/reports", `{"range":"2026-Q2"}`},
			{http.MethodGet, "/v1/reports/" + id, ""},
			{http.MethodGet, "/v1/reports/" + id + "/result", ""},
			{http.MethodGet, "/v1/reports/" + id + "/webhook", ""},
			{http.MethodDelete, "/v1/reports/" + id, ""},
			{http.MethodPost, "/v1/reports/" + id + "/cancel", ""},
			// Refused before the id is looked at: an unknown id reveals nothing either.
			{http.MethodGet, "/v1/reports/" + uuid.NewString(), ""},
			// Refused before the body is looked at: a body that would be a 413 or 400 for a client
			// with a key is a 401 without one.
			{http.MethodPost, "/v1/reports", `{"range":"2026-Q2"} {"range":"2026-Q3"}`},
			{http.MethodPost, "/v1/reports", `{"range":"2026-Q2","range":"2026-Q3"}`},
			{http.MethodPost, "/v1/reports", `{"range":`},
			{http.MethodPost, "/v1/reports", `{"range":"` + strings.Repeat("x", httpapi.MaxBodyBytes) + `"}`},
			{http.MethodPost, "/v1/reports", `{"range":"2026-Q2","extra":1}`},
		}
		for _, a := range auths {
			for _, op := range ops {
				var hdr []string
				if a.header != "" {
					hdr = []string{"Authorization", a.header}
				}
				r := h.as(t, "", op.method, op.path, op.body, hdr...)
				checkUnauthorized(t, fmt.Sprintf("%s %s with %s", op.method, op.path, a.name), r)
			}
		}

		// Nothing was created, listed into or canceled by the refused requests.
		if got := h.listAs(t, acmeKey, ""); !slices.Equal(got, []string{id}) {
			t.Errorf("acme's jobs after the refused requests: %v, want only %s", got, id)
		}
		for _, client := range []string{jobs.Anonymous, "acme", "globex", ""} {
			if jobs, err := h.Store.ListJobs(context.Background(), client, store.IndexedJob{}, 10); err != nil || client != "acme" && len(jobs) > 0 {
				t.Errorf("index of %q after the refused requests: %v, %v", client, jobs, err)
			}
		}
		if r := h.as(t, acmeKey, http.MethodGet, "/v1/reports/"+id, ""); r.Status != http.StatusOK || r.jobStatus(t).Status != gen.Pending {
			t.Errorf("acme's job after a refused DELETE: %s, want it still pending", r)
		}
		if asked, err := h.Store.CancelRequested(context.Background(), id); err != nil || asked {
			t.Errorf("a refused DELETE left a cancel request: %v, %v", asked, err)
		}
	})
}

// TestAuthAccepted checks the forms of a right key that must work, and that each key is its own client.
func TestAuthAccepted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, redistest.Embedded(t), setup{APIKeys: twoClients()})
	acmeJob := h.createAs(t, acmeKey, "2026-Q1")
	globexJob := h.createAs(t, globexKey, "2026-Q1")
	tests := []struct {
		name, header string
		sees         string
	}{
		{"acme", "Bearer " + acmeKey, acmeJob},
		{"globex", "Bearer " + globexKey, globexJob},
		{"lower-case-scheme", "bearer " + acmeKey, acmeJob},
		{"upper-case-scheme", "BEARER " + globexKey, globexJob},
		{"spaces-around-key", "Bearer   " + acmeKey + "  ", acmeJob},
	}
	for _, tt := range tests {
		r := h.as(t, "", http.MethodGet, "/v1/reports", "", "Authorization", tt.header)
		if r.Status != http.StatusOK {
			t.Errorf("%s: %s, want 200", tt.name, r)
			continue
		}
		l := jobList(t, r)
		if len(l.Items) != 1 || l.Items[0].Id.String() != tt.sees {
			t.Errorf("%s: lists %+v, want only job %s", tt.name, l.Items, tt.sees)
		}
	}
}

// TestOwnership checks that a client cannot see, read, cancel, delete or replay another's job, and that
// to it another's job is just unknown: 404, never 403 or 410.
func TestOwnership(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{APIKeys: twoClients(), Worker: true, Webhooks: true})
		ctx := context.Background()

		r := h.as(t, acmeKey, http.MethodPost, "/v1/reports", `{"range":"2026-02","callback_url":"http://127.0.0.1:1/hook"}`)
		if r.Status != http.StatusAccepted {
			t.Fatalf("acme's POST: %s", r)
		}
		id := r.jobStatus(t).Id.String()
		waitDone(t, h, acmeKey, id)

		paths := []struct{ method, path string }{
			{http.MethodGet, "/v1/reports/" + id},
			{http.MethodGet, "/v1/reports/" + id + "/result"},
			{http.MethodGet, "/v1/reports/" + id + "/webhook"},
			{http.MethodDelete, "/v1/reports/" + id},
			{http.MethodPost, "/v1/reports/" + id + "/cancel"},
		}
		for _, p := range paths {
			checkJobNotFound(t, "globex "+p.method+" "+p.path, h.as(t, globexKey, p.method, p.path, ""))
		}
		if r := h.as(t, acmeKey, http.MethodGet, "/v1/reports/"+id+"/webhook", ""); r.Status != http.StatusOK {
			t.Errorf("acme's webhook: %s, want 200", r)
		}
		if r := h.as(t, acmeKey, http.MethodGet, "/v1/reports/"+id+"/result", ""); r.Status != http.StatusOK {
			t.Errorf("acme's result after globex's DELETE: %s, want 200", r)
		}
		if got := h.listAs(t, globexKey, ""); len(got) != 0 {
			t.Errorf("globex lists %v, want none of acme's", got)
		}
		if got := h.listAs(t, acmeKey, ""); !slices.Equal(got, []string{id}) {
			t.Errorf("acme lists %v, want [%s]", got, id)
		}

		// Idempotency keys are per client: the same key and body make one job per client.
		body := `{"range":"2026-Q3"}`
		first := h.as(t, acmeKey, http.MethodPost, "/v1/reports", body, "Idempotency-Key", "k")
		other := h.as(t, globexKey, http.MethodPost, "/v1/reports", body, "Idempotency-Key", "k")
		if first.Status != http.StatusAccepted || other.Status != http.StatusAccepted {
			t.Fatalf("POSTs with key k: acme %s, globex %s", first, other)
		}
		acmeK, globexK := first.jobStatus(t).Id, other.jobStatus(t).Id
		if acmeK == globexK {
			t.Errorf("acme's and globex's key k made one job, %s", acmeK)
		}
		for _, c := range []struct {
			key  string
			want uuid.UUID
		}{{acmeKey, acmeK}, {globexKey, globexK}} {
			r := h.as(t, c.key, http.MethodPost, "/v1/reports", body, "Idempotency-Key", "k")
			if (r.Status != http.StatusAccepted && r.Status != http.StatusSeeOther) || !strings.Contains(r.Header.Get("Location"), c.want.String()) {
				t.Errorf("replay of key k: %s, want job %s", r, c.want)
			}
		}
		// A key only acme used, replayed by globex with acme's very body, is a new job of globex's,
		// and a different body under it is globex's own mismatch, naming none of acme's jobs.
		onlyAcme := h.as(t, acmeKey, http.MethodPost, "/v1/reports", `{"range":"2026-Q4"}`, "Idempotency-Key", "only-acme")
		stolen := h.as(t, globexKey, http.MethodPost, "/v1/reports", `{"range":"2026-Q4"}`, "Idempotency-Key", "only-acme")
		if stolen.Status != http.StatusAccepted || stolen.jobStatus(t).Id == onlyAcme.jobStatus(t).Id {
			t.Errorf("globex replaying acme's key: %s, want a new job of its own (acme's is %s)", stolen, onlyAcme.jobStatus(t).Id)
		}
		mismatch := h.as(t, globexKey, http.MethodPost, "/v1/reports", `{"range":"2026-Q1"}`, "Idempotency-Key", "only-acme")
		if mismatch.Status != http.StatusUnprocessableEntity || bytes.Contains(mismatch.Body, []byte(onlyAcme.jobStatus(t).Id.String())) {
			t.Errorf("globex's mismatched body under acme's key: %s, want a 422 not naming acme's job", mismatch)
		}

		// Deleted by its owner, the job is gone to it and still unknown to the other.
		if r := h.as(t, acmeKey, http.MethodDelete, "/v1/reports/"+id, ""); r.Status != http.StatusNoContent {
			t.Fatalf("acme's DELETE of its done job: %s", r)
		}
		for _, p := range paths[:2] {
			if r := h.as(t, acmeKey, p.method, p.path, ""); r.Status != http.StatusGone {
				t.Errorf("acme %s %s after its DELETE: %s, want 410", p.method, p.path, r)
			}
		}
		for _, p := range paths {
			checkJobNotFound(t, "globex "+p.method+" "+p.path+" after acme's DELETE", h.as(t, globexKey, p.method, p.path, ""))
		}
		if jobs, err := h.Store.ListJobs(ctx, "acme", store.IndexedJob{}, 100); err != nil || slices.ContainsFunc(jobs, func(j store.IndexedJob) bool { return j.ID == id }) {
			t.Errorf("acme's index after the DELETE: %v, %v; want %s gone", jobs, err, id)
		}
	})
}

// TestOwnershipOfPendingJobs covers the jobs that are not done: another client's cancel or DELETE of a
// pending job neither cancels it nor marks it, and a job canceled before it ran is its owner's alone.
func TestOwnershipOfPendingJobs(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{APIKeys: twoClients()})
		id := h.createAs(t, acmeKey, "2026-Q1")
		checkJobNotFound(t, "globex DELETE of acme's pending job", h.as(t, globexKey, http.MethodDelete, "/v1/reports/"+id, ""))
		checkJobNotFound(t, "globex cancel of acme's pending job", h.as(t, globexKey, http.MethodPost, "/v1/reports/"+id+"/cancel", ""))
		if asked, err := h.Store.CancelRequested(context.Background(), id); err != nil || asked {
			t.Errorf("globex's DELETE left a cancel request on acme's job: %v, %v", asked, err)
		}
		if info, err := h.Inspector.GetTaskInfo(store.ReportQueue, id); err != nil || info.State != asynq.TaskStatePending {
			t.Errorf("acme's job after globex's DELETE: %v, %v; want it pending", info, err)
		}

		if r := h.as(t, acmeKey, http.MethodPost, "/v1/reports/"+id+"/cancel", ""); r.Status != http.StatusOK || r.jobStatus(t).Status != gen.Canceled {
			t.Fatalf("acme's cancel of its pending job: %s, want 200 canceled", r)
		}
		if r := h.as(t, acmeKey, http.MethodGet, "/v1/reports/"+id, ""); r.Status != http.StatusOK || r.jobStatus(t).Status != gen.Canceled {
			t.Errorf("acme's canceled job: %s, want 200 canceled", r)
		}
		checkJobNotFound(t, "globex GET of acme's canceled job", h.as(t, globexKey, http.MethodGet, "/v1/reports/"+id, ""))
		checkJobNotFound(t, "globex DELETE of acme's canceled job", h.as(t, globexKey, http.MethodDelete, "/v1/reports/"+id, ""))
		checkJobNotFound(t, "globex cancel of acme's canceled job", h.as(t, globexKey, http.MethodPost, "/v1/reports/"+id+"/cancel", ""))
		if r := h.as(t, acmeKey, http.MethodGet, "/v1/reports/"+id, ""); r.Status != http.StatusOK {
			t.Errorf("acme's canceled job after globex's DELETE: %s, want it still there", r)
		}
	})
}

// TestEveryClientNameOwnsItsJobs submits and reads a job as clients with every kind of name that
// ParseAPIKeys accepts: whatever the name, the client finds its own job and lists it.
func TestEveryClientNameOwnsItsJobs(t *testing.T) {
	t.Parallel()
	names := []string{"a", "Z", "0", "1", "42", "anonymous", "a.b-c_d", strings.Repeat("x", 64)}
	var keys []httpapi.APIKey
	for _, n := range names {
		keys = append(keys, httpapi.NewAPIKey(n, "key-of-"+n+"-0123456789abcdef"))
	}
	h := newHarness(t, redistest.Embedded(t), setup{APIKeys: keys})
	for _, n := range names {
		key := "key-of-" + n + "-0123456789abcdef"
		id := h.createAs(t, key, "2026-Q1")
		if r := h.as(t, key, http.MethodGet, "/v1/reports/"+id, ""); r.Status != http.StatusOK {
			t.Errorf("client %q reading its own job: %s, want 200", n, r)
		}
		if got := h.listAs(t, key, ""); !slices.Equal(got, []string{id}) {
			t.Errorf("client %q lists %v, want its job %s", n, got, id)
		}
	}
}

// TestOpenAPIIsOneClient checks a deployment without keys: requests need no Authorization, and whatever
// one carries, every request is the one anonymous client.
func TestOpenAPIIsOneClient(t *testing.T) {
	t.Parallel()
	h := newHarness(t, redistest.Embedded(t), setup{})
	id := h.createAs(t, "", "2026-Q1")
	other := h.createAs(t, "some-key-nobody-configured", "2026-Q2")
	for _, key := range []string{"", "some-key-nobody-configured", acmeKey} {
		if r := h.as(t, key, http.MethodGet, "/v1/reports/"+id, ""); r.Status != http.StatusOK {
			t.Errorf("GET with key %q: %s, want 200", key, r)
		}
		if got := h.listAs(t, key, ""); !slices.Equal(got, []string{other, id}) {
			t.Errorf("list with key %q: %v, want [%s %s]", key, got, other, id)
		}
	}
	info, err := h.Inspector.GetTaskInfo(store.ReportQueue, id)
	if err != nil {
		t.Fatal(err)
	}
	if p, _, err := tasks.ParseReportPayload(info.Payload); err != nil || (p.Client != "" && p.Client != jobs.Anonymous) {
		t.Errorf("payload of an open deployment's job: %+v, %v; want client empty or %q", p, err, jobs.Anonymous)
	}
}

// TestKeysNeverLeak drives both clients through a flow, and intruders through refusals, then looks for
// any of the keys (or their hashes) in everything the service wrote: responses, log lines, metrics,
// every Redis key and value, and the task payloads and headers.
func TestKeysNeverLeak(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{APIKeys: twoClients(), Worker: true, Webhooks: true,
			Limits: jobs.Limits{SubmitsPerSecond: 100, SubmitBurst: 100, MaxOpenJobs: 100}})
		var secrets []string
		for _, k := range []string{acmeKey, globexKey, wrongKey} {
			sum := sha256.Sum256([]byte(k))
			secrets = append(secrets, k, hex.EncodeToString(sum[:]), string(sum[:]), base64.StdEncoding.EncodeToString(sum[:]))
		}
		check := func(what string, b []byte) {
			t.Helper()
			for _, s := range secrets {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("%s holds a key (or its hash) %q:\n%s", what, s, b)
				}
			}
		}
		send := func(key, method, path, body string, header ...string) *response {
			t.Helper()
			r := h.as(t, key, method, path, body, header...)
			var hdr bytes.Buffer
			_ = r.Header.Write(&hdr)
			check(fmt.Sprintf("the response to %s %s", method, path), append(hdr.Bytes(), r.Body...))
			return r
		}

		ids := map[string]string{}
		for client, key := range map[string]string{"acme": acmeKey, "globex": globexKey} {
			r := send(key, http.MethodPost, "/v1/reports", `{"range":"2026-02","callback_url":"http://127.0.0.1:1/hook"}`, "Idempotency-Key", "leak-test")
			if r.Status != http.StatusAccepted {
				t.Fatalf("%s's POST: %s", client, r)
			}
			id := r.jobStatus(t).Id.String()
			ids[client] = id
			send(key, http.MethodPost, "/v1/reports", `{"range":"2026-02","callback_url":"http://127.0.0.1:1/hook"}`, "Idempotency-Key", "leak-test")
			send(key, http.MethodPost, "/v1/reports", `{"range":"2026-03"}`, "Idempotency-Key", "leak-test")
			send(key, http.MethodPost, "/v1/reports", `{"range":"2026-13"}`)
			waitDone(t, h, key, id)
			send(key, http.MethodGet, "/v1/reports/"+id+"/result", "")
			send(key, http.MethodGet, "/v1/reports/"+id+"/webhook", "")
			send(key, http.MethodGet, "/v1/reports?limit=1", "")
			send(key, http.MethodGet, "/v1/reports?cursor=bm9wZQ", "")
			send(key, http.MethodGet, "/v1/reports/"+uuid.NewString(), "")
		}
		send(globexKey, http.MethodGet, "/v1/reports/"+ids["acme"], "")
		send(globexKey, http.MethodDelete, "/v1/reports/"+ids["acme"], "")
		send(globexKey, http.MethodPost, "/v1/reports/"+ids["acme"]+"/cancel", "")
		send(acmeKey, http.MethodPost, "/v1/reports/"+ids["acme"]+"/cancel", "")
		for _, auth := range []string{"Bearer " + wrongKey, "Basic " + wrongKey, wrongKey, "Bearer " + acmeKey + wrongKey} {
			for _, p := range []string{"/v1/reports", "/v1/reports/" + ids["acme"]} {
				send("", http.MethodGet, p, "", "Authorization", auth)
			}
			send("", http.MethodPost, "/v1/reports", `{"range":"2026-Q1"}`, "Authorization", auth)
		}
		send(acmeKey, http.MethodDelete, "/v1/reports/"+ids["acme"], "")

		check("the log", []byte(h.Log.String()))
		metrics := httptest.NewRecorder()
		promhttp.HandlerFor(h.Metrics, promhttp.HandlerOpts{}).ServeHTTP(metrics, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if !bytes.Contains(metrics.Body.Bytes(), []byte("reportd_http_requests_total")) {
			t.Fatalf("no request metrics:\n%s", metrics.Body)
		}
		check("the metrics", metrics.Body.Bytes())
		check("Redis", dumpRedis(t, h.Redis))

		info, err := h.Inspector.GetTaskInfo(store.ReportQueue, ids["globex"])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(info.Payload, []byte(`"globex"`)) {
			t.Errorf("globex's task payload %s does not name its client", info.Payload)
		}
		check("globex's task payload", info.Payload)
		for k, v := range info.Headers {
			check("globex's task header "+k, []byte(v))
		}
		if info.ID != ids["globex"] {
			t.Errorf("task id %s, want %s", info.ID, ids["globex"])
		}
	})
}

// dumpRedis returns every key of rdb and its value, whatever its type, as one text.
func dumpRedis(t *testing.T, rdb *redis.Client) []byte {
	t.Helper()
	ctx := context.Background()
	var out bytes.Buffer
	iter := rdb.Scan(ctx, 0, "*", 100).Iterator()
	n := 0
	for iter.Next(ctx) {
		key := iter.Val()
		n++
		typ, err := rdb.Type(ctx, key).Result()
		if err != nil {
			t.Fatalf("TYPE %s: %v", key, err)
		}
		var v any
		switch typ {
		case "string":
			v, err = rdb.Get(ctx, key).Result()
		case "hash":
			v, err = rdb.HGetAll(ctx, key).Result()
		case "list":
			v, err = rdb.LRange(ctx, key, 0, -1).Result()
		case "set":
			v, err = rdb.SMembers(ctx, key).Result()
		case "zset":
			v, err = rdb.ZRangeWithScores(ctx, key, 0, -1).Result()
		case "stream":
			v, err = rdb.XRange(ctx, key, "-", "+").Result()
		default:
			err = fmt.Errorf("type %s", typ)
		}
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatalf("read %s: %v", key, err)
		}
		fmt.Fprintf(&out, "%s (%s): %v\n", key, typ, v)
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("Redis is empty: nothing to look for keys in")
	}
	return out.Bytes()
}

// waitDone polls job id as the client of key until it is done.
func waitDone(t *testing.T, h *harness, key, id string) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		r := h.as(t, key, http.MethodGet, "/v1/reports/"+id, "")
		if r.Status != http.StatusOK && r.Status != http.StatusSeeOther {
			t.Fatalf("job %s not done: %s", id, r)
		}
		if r.Status == http.StatusOK {
			return fmt.Errorf("job %s not done: %s", id, r)
		}
		return nil
	})
}

// TestProblemTypesNeedNoKey: the problem-type descriptions every problem links to are read without a
// key, or with a wrong one, even where keys are configured: a refused client must be able to read why.
func TestProblemTypesNeedNoKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t, redistest.Embedded(t), setup{APIKeys: twoClients()})
	for _, key := range []string{"", "not-a-key", acmeKey} {
		if r := h.as(t, key, http.MethodGet, "/problems/unauthorized", ""); r.Status != http.StatusOK || r.mediaType() != "text/plain" {
			t.Errorf("GET /problems/unauthorized with key %q = %s, want 200 text/plain", key, r)
		}
	}
}
