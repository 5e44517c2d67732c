package impl_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/report"
)

// sseEvent is one event read off a stream, or a comment line (Comment set).
type sseEvent struct {
	ID, Kind, Data, Comment string
	Retry                   string
	At                      time.Time
}

// openEvents opens job id's event stream with headers (name, value pairs), checks that it is one, and
// returns its events as they come, closed when the stream ends or the test does.
func openEvents(t *testing.T, h *harness, key, id string, header ...string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req := h.request(t, http.MethodGet, "/v1/reports/"+id+"/events", nil, header...).WithContext(ctx)
	req.Header.Set("Accept", "text/event-stream")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" || res.Header.Get("Cache-Control") != "no-store" {
		res.Body.Close()
		t.Fatalf("GET events: %d %v, want 200 text/event-stream, no-store", res.StatusCode, res.Header)
	}
	out := make(chan sseEvent, 1000)
	go func() {
		defer close(out)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch {
			case line == "":
				if ev != (sseEvent{}) {
					ev.At = time.Now()
					out <- ev
				}
				ev = sseEvent{}
			case field == "":
				out <- sseEvent{Comment: value, At: time.Now()}
			case field == "id":
				ev.ID = value
			case field == "event":
				ev.Kind = value
			case field == "data":
				ev.Data = value
			case field == "retry":
				ev.Retry = value
			}
		}
	}()
	return out
}

// readAll reads a stream's events until it ends, within limit.
func readAll(t *testing.T, events <-chan sseEvent, limit time.Duration) []sseEvent {
	t.Helper()
	var all []sseEvent
	deadline := time.After(limit)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return all
			}
			all = append(all, ev)
		case <-deadline:
			t.Fatalf("the stream did not end within %s; events so far: %+v", limit, all)
		}
	}
}

// TestEventsFollowAJob follows a running job to its end: retry first, then status events with rising
// progress at most every 250 ms, each with an id, then one done event with the result's URL, and the
// stream ends. A reconnect with the done event's id answers 204; one with a status's id goes on.
func TestEventsFollowAJob(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		// 30 days of 40 ms: about 1.2 s of progress.
		ledger := slowLedger{inner: report.NewSyntheticLedger(smallRows), perDay: 40 * time.Millisecond}
		h := newHarness(t, b, setup{Worker: true, Ledger: ledger, Waiters: true})
		id := h.create(t, "2026-01-01..2026-01-30")
		all := readAll(t, openEvents(t, h, "", id), 20*time.Second)
		if len(all) < 3 || all[0].Retry != "2000" {
			t.Fatalf("events %+v: want retry: 2000 first, then events", all)
		}
		var statuses []gen.JobStatus
		var last sseEvent
		for i, ev := range all[1:] {
			if ev.Comment != "" {
				continue
			}
			if ev.ID == "" {
				t.Errorf("event %d has no id: %+v", i, ev)
			}
			if last.Kind == string(gen.EventDone) {
				t.Errorf("an event after done: %+v", ev)
			}
			if ev.Kind == string(gen.EventStatus) {
				var st gen.JobStatus
				if err := json.Unmarshal([]byte(ev.Data), &st); err != nil || st.Id.String() != id {
					t.Fatalf("status event data %q: %v", ev.Data, err)
				}
				if n := len(statuses); n > 0 && (st.Progress < statuses[n-1].Progress) {
					t.Errorf("progress went back: %v after %v", st.Progress, statuses[n-1].Progress)
				}
				statuses = append(statuses, st)
			}
			last = ev
		}
		if last.Kind != string(gen.EventDone) || last.ID != string(gen.EventDone) {
			t.Fatalf("the stream ended with %+v, want the done event", last)
		}
		// At most one status event every EventGap (read times can bunch events up, so count them over the
		// stream's whole length rather than measure each gap).
		if took := last.At.Sub(all[0].At); len(statuses) > int(took/jobs.EventGap)+2 {
			t.Errorf("%d status events in %s, want at most one every %s", len(statuses), took, jobs.EventGap)
		}
		var done struct{ ID, Result string }
		if err := json.Unmarshal([]byte(last.Data), &done); err != nil || done.ID != id || done.Result != "/v1/reports/"+id+"/result" {
			t.Errorf("done event data %q, want the id and the result URL", last.Data)
		}
		running := 0
		for _, st := range statuses {
			if st.Status == gen.Running && st.Progress > 0 && st.Progress < 1 {
				running++
			}
		}
		if running < 2 {
			t.Errorf("%d status events of the running job with progress, want several: %+v", running, statuses)
		}
		t.Logf("%d events, %d status events with progress while running", len(all), running)

		// A reconnect after the terminal event: 204, so that EventSource stops.
		r := h.doValid(t, h.request(t, http.MethodGet, "/v1/reports/"+id+"/events", nil, "Last-Event-ID", string(gen.EventDone)))
		if r.Status != http.StatusNoContent {
			t.Errorf("reconnect after done: %s, want 204", r)
		}
		// A new stream of a done job: done at once, and the end.
		again := readAll(t, openEvents(t, h, "", id), 5*time.Second)
		if n := len(again); n != 2 || again[1].Kind != string(gen.EventDone) {
			t.Errorf("stream of a done job: %+v, want retry and done", again)
		}
	})
}

// TestEventsResumeHeartbeatAndEnd: a pending job's stream sends its status, then only heartbeats; a
// reconnect with that status's id does not repeat it; a cancel ends both streams with canceled.
func TestEventsResumeHeartbeatAndEnd(t *testing.T) {
	t.Parallel()
	h := newHarness(t, redistest.Embedded(t), setup{Waiters: true, Heartbeat: 50 * time.Millisecond}) // no worker: it stays pending
	id := h.create(t, "2026-Q1")
	first := openEvents(t, h, "", id)
	var status sseEvent
	comments := 0
	for deadline := time.After(5 * time.Second); comments < 3; {
		select {
		case ev := <-first:
			switch {
			case ev.Comment != "":
				comments++
			case ev.Kind == string(gen.EventStatus):
				if status.ID != "" {
					t.Errorf("a second status event of a job that did not change: %+v", ev)
				}
				status = ev
			}
		case <-deadline:
			t.Fatalf("no 3 heartbeats within 5 s (status %+v, %d comments)", status, comments)
		}
	}
	if !strings.HasPrefix(status.ID, "pending.") {
		t.Fatalf("status event %+v, want a pending job's", status)
	}
	resumed := openEvents(t, h, "", id, "Last-Event-ID", status.ID)
	if r := h.cancel(t, id); r.Status != http.StatusOK {
		t.Fatalf("cancel: %s", r)
	}
	for name, events := range map[string]<-chan sseEvent{"first": first, "resumed": resumed} {
		var kinds []string
		for _, ev := range readAll(t, events, 5*time.Second) {
			if ev.Kind != "" {
				kinds = append(kinds, ev.Kind)
			}
		}
		if strings.Join(kinds, ",") != string(gen.EventCanceled) {
			t.Errorf("the %s stream's events after the status: %v, want only canceled", name, kinds)
		}
	}
}

// TestEventsRefused: an unknown, a deleted and another client's job answer their problem before any
// event, and a client at its bound of open streams gets 429.
func TestEventsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, redistest.Embedded(t), setup{Waiters: true, APIKeys: twoClients(), Limits: jobs.Limits{MaxStreams: 2}})
	get := func(key, id string) *response {
		return h.as(t, key, http.MethodGet, "/v1/reports/"+id+"/events", "")
	}
	if r := get(acmeKey, uuid.NewString()); r.Status != http.StatusNotFound || r.problem(t).Type != "/problems/job-not-found" {
		t.Errorf("events of an unknown id: %s", r)
	}
	acme := h.createAs(t, acmeKey, "2026-Q1")
	if r := get(globexKey, acme); r.Status != http.StatusNotFound {
		t.Errorf("globex's stream of acme's job: %s, want 404", r)
	}
	if r := get("", acme); r.Status != http.StatusUnauthorized {
		t.Errorf("a stream without a key: %s, want 401", r)
	}
	gone := h.createAs(t, acmeKey, "2026-Q2")
	if r := h.as(t, acmeKey, http.MethodPost, "/v1/reports/"+gone+"/cancel", ""); r.Status != http.StatusOK {
		t.Fatal(r)
	}
	if r := h.as(t, acmeKey, http.MethodDelete, "/v1/reports/"+gone, ""); r.Status != http.StatusNoContent {
		t.Fatal(r)
	}
	if r := get(acmeKey, gone); r.Status != http.StatusGone {
		t.Errorf("events of a deleted job: %s, want 410", r)
	}
	// Two streams open: the third is refused; globex has its own bound.
	openEvents(t, h, acmeKey, acme)
	openEvents(t, h, acmeKey, acme)
	if r := get(acmeKey, acme); r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Errorf("a third stream: %s, want 429 with Retry-After", r)
	}
	globex := h.createAs(t, globexKey, "2026-Q1")
	openEvents(t, h, globexKey, globex)
}

// TestManyStreamsCheapOnRedis: a thousand open event streams, once each has its first event, cost Redis
// no command at all while their jobs do not change, as a thousand Prefer: wait requests cost none
// (TestManyWaitersCheapOnRedis): progress and ends reach them by pub/sub.
func TestManyStreamsCheapOnRedis(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		if b.Name != "redis-server" {
			t.Skip("only redis-server counts its commands (INFO commandstats)")
		}
		const jobCount, window = 10, 3 * time.Second
		streams := 1000
		if raceDetector {
			streams = 200 // each stream is some six goroutines, and other tests run beside it
		}
		// No worker: the jobs wait. No unwoken re-read within the test either: a stream opened while the
		// others still open could re-read inside the window (the default is every 5-15 s), under load.
		h := newHarness(t, b, setup{Waiters: true, Limits: jobs.Limits{MaxStreams: streams}, Fallback: time.Hour})
		ids := make([]string, jobCount)
		for i := range ids {
			ids[i] = h.create(t, "2026-01")
		}
		first := make(chan struct{}, streams)
		for i := range streams {
			events := openEvents(t, h, "", ids[i%jobCount])
			go func() {
				for ev := range events {
					if ev.Kind == string(gen.EventStatus) {
						first <- struct{}{}
					}
				}
			}()
		}
		for range streams {
			select {
			case <-first:
			case <-time.After(30 * time.Second):
				t.Fatal("not every stream had its first event within 30 s")
			}
		}
		time.Sleep(200 * time.Millisecond) // the last first reads' commands land
		before := commandCount(t, h.Redis)
		time.Sleep(window)
		if n := commandCount(t, h.Redis) - before; n > 0 {
			t.Errorf("%d open streams cost Redis %d commands in %s, want none", streams, n, window)
		}
	})
}
