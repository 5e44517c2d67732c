package impl

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/jobs/jobstest"
	"github.com/reportd/reportd/internal/testkit"
)

// waitFixture is a fixture whose server's Waiters the test notifies itself.
func waitFixture(t *testing.T) (*fixture, *jobs.Waiters) {
	t.Helper()
	f := newFixture()
	w := jobs.NewWaiters()
	f.srv = New(jobs.New(jobs.Deps{
		Queue: f.queue, Inspector: f.tasks, Store: f.store, Policy: testPolicy, Waiters: w,
		Now: func() time.Time { return testNow }, NewID: func() uuid.UUID { return testID },
	}))
	return f, w
}

// awaitLen waits until w waits for n jobs.
func awaitLen(t *testing.T, w *jobs.Waiters, n int) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, time.Millisecond, func() error {
		if got := w.Len(); got != n {
			return fmt.Errorf("waiters wait for %d jobs, want %d", got, n)
		}
		return nil
	})
}

// receive returns what c sends, or fails t with what did not come within 2 s of after.
func receive[T any](t *testing.T, c <-chan T, what, after string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(2 * time.Second):
		t.Fatalf("%s did not come within 2 s of %s", what, after)
	}
	var none T
	return none
}

type statusAnswer struct {
	res  gen.GetReportStatusResponseObject
	err  error
	took time.Duration
}

// waitStatus calls GetReportStatus with Prefer: wait=30 in a goroutine.
func waitStatus(f *fixture) <-chan statusAnswer {
	out := make(chan statusAnswer, 1)
	go func() {
		start := time.Now()
		res, err := f.srv.GetReportStatus(context.Background(), gen.GetReportStatusRequestObject{Id: testID, Params: gen.GetReportStatusParams{Prefer: ptr("wait=30")}})
		out <- statusAnswer{res, err, time.Since(start)}
	}()
	return out
}

// waitingRead starts a status read with Prefer: wait=30 of a waitFixture's job, in state, and returns
// once the read waits.
func waitingRead(t *testing.T, state asynq.TaskState) (*fixture, *jobs.Waiters, <-chan statusAnswer) {
	t.Helper()
	f, w := waitFixture(t)
	f.tasks.put(reportInfo(state))
	answers := waitStatus(f)
	awaitLen(t, w, 1)
	return f, w, answers
}

// TestWaitForWokenByEvent: a waiting status read answers as soon as the job's finish event arrives, and
// stops watching.
func TestWaitForWokenByEvent(t *testing.T) {
	t.Parallel()
	f, w, answers := waitingRead(t, asynq.TaskStateActive)

	f.tasks.put(reportInfo(asynq.TaskStateCompleted, func(i *asynq.TaskInfo) { i.CompletedAt = testNow.Add(-time.Second) }))
	w.Notify(testID.String())
	a := receive(t, answers, "the waiting read's answer", "the finish event")
	if _, ok := a.res.(gen.GetReportStatus303Response); !ok || a.err != nil {
		t.Errorf("the waiting read answered %#v, %v; want a 303", a.res, a.err)
	}
	if got := a.res.(gen.GetReportStatus303Response).Headers.PreferenceApplied; got == nil || *got != "wait=30" {
		t.Errorf("Preference-Applied = %v, want wait=30", got)
	}
	awaitLen(t, w, 0)
}

// TestWaitForEndsOnDrain: a waiting status read answers with the current status once the server
// drains, and so does one that starts while it drains.
func TestWaitForEndsOnDrain(t *testing.T) {
	t.Parallel()
	f, w, answers := waitingRead(t, asynq.TaskStatePending)
	w.Drain()
	for i, answers := range []<-chan statusAnswer{answers, waitStatus(f)} {
		a := receive(t, answers, fmt.Sprintf("read %d's answer", i), "Drain")
		res, ok := a.res.(gen.GetReportStatus200JSONResponse)
		if !ok || a.err != nil || res.Body.Status != gen.Pending {
			t.Errorf("read %d answered %#v, %v; want 200 pending", i, a.res, a.err)
		}
	}
	awaitLen(t, w, 0)
}

// TestWaitForEndsWithTheRequest: a waiting read whose request goes away stops waiting and watching.
func TestWaitForEndsWithTheRequest(t *testing.T) {
	t.Parallel()
	f, w := waitFixture(t)
	f.tasks.put(reportInfo(asynq.TaskStatePending))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := f.srv.jobs.Status(ctx, jobs.Anonymous, testID.String(), ptr(time.Minute))
		errc <- err
	}()
	awaitLen(t, w, 1)
	cancel()
	if err := receive(t, errc, "a waiting Status's return", "its request's end"); !errors.Is(err, context.Canceled) {
		t.Errorf("a waiting Status = %v, want context.Canceled", err)
	}
	awaitLen(t, w, 0)
}

// TestWaitForTimesOut: with no event, the wait ends at its deadline with the current status.
func TestWaitForTimesOut(t *testing.T) {
	t.Parallel()
	f, _ := waitFixture(t)
	f.tasks.put(reportInfo(asynq.TaskStateActive, jobstest.WithProgress(jobs.Progress{Share: 0.5, StartedAt: testNow.Add(-time.Second), Attempt: 1})))
	start := time.Now()
	v, err := f.srv.jobs.Status(context.Background(), jobs.Anonymous, testID.String(), ptr(200*time.Millisecond))
	took := time.Since(start)
	if err != nil || v.State != jobs.Running {
		t.Errorf("a waiting Status = %v, %v; want the running job", v.State, err)
	}
	if took < 200*time.Millisecond || took > time.Second {
		t.Errorf("a Status waiting 200ms returned after %s", took)
	}
}
