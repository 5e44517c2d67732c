package impl_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/tasks"
)

// page is one page of the list as a client sees it.
type page struct {
	ids  []string
	next string
}

// listPage GETs path as the client of key and checks the page's framing: 200, no-store, and a Link
// rel=next header exactly when the body has next, naming the same URL.
func (h *harness) listPage(t *testing.T, key, path string) page {
	t.Helper()
	r := h.as(t, key, http.MethodGet, path, "")
	if r.Status != http.StatusOK {
		t.Fatalf("GET %s: %s", path, r)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("GET %s: Cache-Control %q, want no-store", path, cc)
	}
	l := jobList(t, r)
	var p page
	for _, it := range l.Items {
		p.ids = append(p.ids, it.Id.String())
	}
	link := r.Header.Get("Link")
	switch {
	case l.Next == nil && link != "":
		t.Errorf("GET %s: Link %q on the last page", path, link)
	case l.Next != nil:
		p.next = *l.Next
		if want := "<" + p.next + `>; rel="next"`; link != want {
			t.Errorf("GET %s: Link %q, want %q", path, link, want)
		}
		if !strings.HasPrefix(p.next, "/v1/reports?") {
			t.Errorf("GET %s: next %q is not a list URL", path, p.next)
		}
	}
	return p
}

// TestListPages creates 25 jobs and pages through them 7 at a time: newest first, each exactly once,
// with next until the last page. Another client's jobs, made in between, never show.
func TestListPages(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{APIKeys: twoClients()})
		var created []string
		for i := range 25 {
			created = append(created, h.createAs(t, acmeKey, "2026-Q1"))
			if i%5 == 0 {
				h.createAs(t, globexKey, "2026-Q1")
			}
		}
		slices.Reverse(created)

		var got []string
		var sizes []int
		path := "/v1/reports?limit=7"
		for path != "" && len(sizes) < 10 {
			p := h.listPage(t, acmeKey, path)
			got = append(got, p.ids...)
			sizes = append(sizes, len(p.ids))
			if p.next != "" && !strings.Contains(p.next, "limit=7") {
				t.Errorf("next %q does not keep limit=7", p.next)
			}
			path = p.next
		}
		if !slices.Equal(sizes, []int{7, 7, 7, 4}) {
			t.Errorf("page sizes %v, want [7 7 7 4]", sizes)
		}
		if !slices.Equal(got, created) {
			t.Errorf("paged ids (newest first):\n got %v\nwant %v", got, created)
		}

		first := h.listPage(t, acmeKey, "/v1/reports")
		if len(first.ids) != 20 || first.next == "" || !slices.Equal(first.ids, created[:20]) {
			t.Errorf("default page: %d ids, next %q; want the 20 newest and a next", len(first.ids), first.next)
		}
		if all := h.listPage(t, acmeKey, "/v1/reports?limit=100"); len(all.ids) != 25 || all.next != "" {
			t.Errorf("limit=100: %d ids, next %q; want all 25 and no next", len(all.ids), all.next)
		}
		if exact := h.listPage(t, globexKey, "/v1/reports?limit=5"); len(exact.ids) != 5 || exact.next != "" {
			t.Errorf("globex's 5 jobs with limit=5: %d ids, next %q; want 5 and no next", len(exact.ids), exact.next)
		}
	})
}

// TestListPagesJobsCreatedTogether pages through jobs created in the same microsecond (concurrent
// submissions, or API processes whose clocks agree): a page boundary between them must not lose any.
func TestListPagesJobsCreatedTogether(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	clk.Set(time.Now())
	h := newHarness(t, redistest.Embedded(t), setup{Clock: clk})
	var created []string
	for range 5 {
		created = append(created, h.create(t, "2026-Q1"))
	}
	got := h.listAs(t, "", "?limit=2")
	slices.Sort(got)
	slices.Sort(created)
	if !slices.Equal(got, created) {
		t.Errorf("paging 2 at a time through 5 jobs created at one instant lists %v, want all of %v", got, created)
	}
}

// stateHandler is a worker that fails the jobs over 2026-01, keeps those over 2026-03 running until it
// stops, and runs every other with the real processor.
type stateHandler struct{ done asynq.Handler }

func (s stateHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	p, _, err := tasks.ParseReportPayload(t.Payload())
	switch {
	case err == nil && p.Range == "2026-01-01..2026-01-31":
		return fmt.Errorf("failed on purpose: %w", asynq.SkipRetry)
	case err == nil && p.Range == "2026-03-01..2026-03-31":
		<-ctx.Done()
		return ctx.Err()
	}
	return s.done.ProcessTask(ctx, t)
}

// newStateHandler is a stateHandler whose real processor writes to b.
func newStateHandler(t *testing.T, b redistest.Backend) stateHandler {
	return stateHandler{done: &tasks.ReportProcessor{Ledger: report.NewSyntheticLedger(smallRows),
		Jobs: jobs.New(jobs.Deps{Store: store.NewStore(b.Client(t), 24*time.Hour, time.Hour)}), Now: time.Now, Log: slog.New(slog.DiscardHandler)}}
}

// TestListStatusFilter lists only the jobs in one status, paging through them with the filter kept.
func TestListStatusFilter(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{Worker: true, Handler: newStateHandler(t, b)})
		var done, failed []string
		for i := range 7 {
			if i%2 == 0 {
				done = append(done, h.create(t, "2026-02"))
			} else {
				failed = append(failed, h.create(t, "2026-01"))
			}
		}
		for _, id := range done {
			h.poll(t, id, 10*time.Millisecond, 10*time.Second, is303)
		}
		for _, id := range failed {
			h.poll(t, id, 10*time.Millisecond, 10*time.Second, hasState(t, gen.Failed))
		}
		slices.Reverse(done)
		slices.Reverse(failed)

		var got []string
		path := "/v1/reports?status=done&limit=3"
		for pages := 0; path != ""; pages++ {
			if pages > 3 {
				t.Fatalf("still a next page after %d pages", pages)
			}
			p := h.listPage(t, "", path)
			if p.next != "" && !strings.Contains(p.next, "status=done") {
				t.Errorf("next %q drops the filter", p.next)
			}
			got = append(got, p.ids...)
			path = p.next
		}
		if !slices.Equal(got, done) {
			t.Errorf("status=done lists %v, want %v", got, done)
		}
		if p := h.listPage(t, "", "/v1/reports?status=failed"); !slices.Equal(p.ids, failed) || p.next != "" {
			t.Errorf("status=failed lists %v (next %q), want %v and no next", p.ids, p.next, failed)
		}
		for _, s := range []string{"pending", "running", "canceled"} {
			if p := h.listPage(t, "", "/v1/reports?status="+s); len(p.ids) != 0 || p.next != "" {
				t.Errorf("status=%s lists %v (next %q), want nothing", s, p.ids, p.next)
			}
		}
	})
}

// TestListBadParams checks that a malformed limit, status or cursor is a 400 naming the parameter.
func TestListBadParams(t *testing.T) {
	t.Parallel()
	h := newHarness(t, redistest.Embedded(t), setup{})
	h.create(t, "2026-Q1")
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tests := []struct{ query, param string }{
		{"limit=0", "limit"},
		{"limit=101", "limit"},
		{"limit=-1", "limit"},
		{"limit=abc", "limit"},
		{"limit=1.5", "limit"},
		{"limit=99999999999999999999", "limit"},
		{"status=bogus", "status"},
		{"status=DONE", "status"},
		{"cursor=", "cursor"},
		{"cursor=!!!", "cursor"},
		{"cursor=a%2Fb", "cursor"},
		{"cursor=" + strings.Repeat("A", 201), "cursor"},
		{"cursor=" + b64("v2:123"), "cursor"},
		{"cursor=" + b64("v1:"), "cursor"},
		{"cursor=" + b64("v1:abc"), "cursor"},
		{"cursor=" + b64("v1:0"), "cursor"},
		{"cursor=" + b64("v1:-5"), "cursor"},
		{"cursor=" + b64("v1:99999999999999999999"), "cursor"},
		{"cursor=" + b64("v1:5") + "=", "cursor"},
		{"cursor=" + strings.ToUpper(b64("v1:1234567")), "cursor"},
	}
	for _, tt := range tests {
		r := h.get(t, "/v1/reports?"+tt.query)
		if r.Status != http.StatusBadRequest {
			t.Errorf("?%s: %s, want 400", tt.query, r)
			continue
		}
		if p := r.problem(t); !strings.Contains(p.Detail, `"`+tt.param+`"`) {
			t.Errorf("?%s: detail %q does not name %q", tt.query, p.Detail, tt.param)
		}
	}
	// A well-formed cursor past every job is an empty last page, not an error.
	if p := h.listPage(t, "", "/v1/reports?cursor="+b64("v2:1:00000000-0000-0000-0000-000000000000")); len(p.ids) != 0 || p.next != "" {
		t.Errorf("a cursor before every job: %v, next %q; want an empty last page", p.ids, p.next)
	}
}

// TestListDropsExpiredJobs moves the server's clock past the retention: the done jobs drop out of the
// list, and out of the index, while a job still running stays.
func TestListDropsExpiredJobs(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		clk := &clock{}
		h := newHarness(t, b, setup{Worker: true, Clock: clk, Policy: jobs.Policy{Retention: time.Hour}, Handler: newStateHandler(t, b)})
		var ids []string
		for range 3 {
			id := h.create(t, "2026-02")
			h.poll(t, id, 10*time.Millisecond, 10*time.Second, is303)
			ids = append([]string{id}, ids...)
		}
		if got := h.listAs(t, "", ""); !slices.Equal(got, ids) {
			t.Fatalf("before the retention: %v, want %v", got, ids)
		}
		clk.Set(time.Now().Add(time.Hour + time.Minute))
		fresh := h.create(t, "2026-03") // held running by the worker: it does not expire
		if got := h.listAs(t, "", ""); !slices.Equal(got, []string{fresh}) {
			t.Errorf("after the retention: %v, want only the new job %s", got, fresh)
		}
		indexed, err := h.Store.ListJobs(context.Background(), jobs.Anonymous, store.IndexedJob{}, 10)
		if err != nil || len(indexed) != 1 || indexed[0].ID != fresh {
			t.Errorf("index after the list met the expired jobs: %v, %v; want only %s", indexed, err, fresh)
		}
	})
}

// countingTasks counts the task reads of the API.
type countingTasks struct {
	jobs.Inspector
	reads atomic.Int64
}

func (c *countingTasks) GetTaskInfo(queue, id string) (*asynq.TaskInfo, error) {
	c.reads.Add(1)
	return c.Inspector.GetTaskInfo(queue, id)
}

// TestListCostIsBounded lists with a filter that matches none of 200 jobs: each page reads at most
// limit*3 of them, answers with a next cursor while jobs remain, and the pages end.
func TestListCostIsBounded(t *testing.T) {
	t.Parallel()
	const total, limit = 200, 10
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		counter := &countingTasks{}
		h := newHarness(t, b, setup{WrapTasks: func(r jobs.Inspector) jobs.Inspector { counter.Inspector = r; return counter }})
		for range total {
			h.create(t, "2026-Q1")
		}
		path := fmt.Sprintf("/v1/reports?status=done&limit=%d", limit)
		stats := func() map[string]int64 {
			if b.Name != "redis-server" {
				return nil
			}
			s, err := redistest.CommandStats(context.Background(), h.Redis)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		before, statsBefore := counter.reads.Load(), stats()
		p := h.listPage(t, "", path)
		reads, statsAfter := counter.reads.Load()-before, stats()
		if len(p.ids) != 0 {
			t.Fatalf("status=done lists %v, with no job done", p.ids)
		}
		if reads > limit*3 {
			t.Errorf("one page read %d jobs, want at most %d", reads, limit*3)
		}
		if p.next == "" {
			t.Errorf("the first page has no next, with %d jobs unread", total-reads)
		}
		if statsAfter != nil {
			// Each task read is one script (EVALSHA, or EVAL once, the first time) running EXISTS, HMGET
			// and SISMEMBER; the index is read in one range query; the INFO itself counts too.
			diff, total := map[string]int64{}, int64(0)
			for k, v := range statsAfter {
				if d := v - statsBefore[k]; d != 0 {
					diff[k] = d
					total += d
				}
			}
			if diff["hmget"] > limit*3 || diff["zrevrangebyscore"] > 1 || total > 4*limit*3+3 {
				t.Errorf("one page cost %d Redis commands on redis-server (%v), want at most %d task reads, 1 index read, %d in all",
					total, diff, limit*3, 4*limit*3+3)
			}
		}

		pages := 1
		for p.next != "" {
			if pages > total/(limit*3)+2 {
				t.Fatalf("still a next page after %d pages over %d jobs", pages, total)
			}
			p = h.listPage(t, "", p.next)
			if len(p.ids) != 0 {
				t.Fatalf("status=done lists %v, with no job done", p.ids)
			}
			pages++
		}
		if read := counter.reads.Load() - before; read != total {
			t.Errorf("paging through the whole list read %d jobs, want each of the %d once", read, total)
		}
	})
}

// TestListUnindexesVanishedJobs deletes tasks behind the API's back: the list skips them and drops
// them from the index, and a page full of them still moves on.
func TestListUnindexesVanishedJobs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, redistest.Embedded(t), setup{})
	var kept []string
	for i := range 9 {
		id := h.create(t, "2026-Q1")
		if i%3 == 0 {
			kept = append(kept, id)
			continue
		}
		if err := h.Inspector.DeleteTask(store.ReportQueue, id); err != nil {
			t.Fatal(err)
		}
	}
	slices.Reverse(kept)
	if got := h.listAs(t, "", "?limit=1"); !slices.Equal(got, kept) {
		t.Errorf("with vanished jobs: %v, want %v", got, kept)
	}
	indexed, err := h.Store.ListJobs(context.Background(), jobs.Anonymous, store.IndexedJob{}, 100)
	if err != nil || len(indexed) != len(kept) {
		t.Errorf("index after listing: %v, %v; want the %d jobs left", indexed, err, len(kept))
	}
	// A job id that is not a job's at all (a corrupt index entry) is dropped the same way.
	if _, err := h.Store.Admit(context.Background(), store.Admission{Client: jobs.Anonymous, ID: "not-a-job-" + uuid.NewString(), At: time.Now(), Keep: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if got := h.listAs(t, "", ""); !slices.Equal(got, kept) {
		t.Errorf("with a corrupt index entry: %v, want %v", got, kept)
	}
	if _, err := h.Inspector.GetTaskInfo(store.ReportQueue, kept[0]); errors.Is(err, asynq.ErrTaskNotFound) {
		t.Errorf("a kept job's task is gone")
	}
}
