package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/internal/webhook"
	"github.com/reportd/reportd/internal/webhook/webhooktest"
	"github.com/reportd/reportd/tasks"
)

// testEvent is a Webhooks.Event for the tests: a small JSON body that names the job, its state and the
// instant, so that two announcements of one job tell apart. (The API's, impl.WebhookEvent, cannot be
// used here: impl imports jobs.)
func testEvent(id string, state State, at time.Time) ([]byte, error) {
	return json.Marshal(map[string]any{"id": id, "state": state, "at": at.UTC()})
}

// TestScheduleWebhookOnce: however often a job's end is announced, it has one delivery task, placed on
// the webhook queue with a bounded number of retries, carrying the first announcement.
func TestScheduleWebhookOnce(t *testing.T) {
	t.Parallel()
	rdb := redistest.Embedded(t).Client(t)
	inspector := asynq.NewInspectorFromRedisClient(rdb)
	ctx := context.Background()
	at := time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)
	now := at
	s := New(Deps{Queue: asynq.NewClientFromRedisClient(rdb), Policy: testPolicy, Webhooks: &Webhooks{Event: testEvent},
		Now: func() time.Time { return now }})
	id := uuid.NewString()
	s.announce(ctx, id, "https://8.8.8.8/hook", Done)
	now = at.Add(time.Minute)
	s.announce(ctx, id, "https://8.8.8.8/hook", Canceled)
	other := uuid.NewString()
	now = at
	s.announce(ctx, other, "https://8.8.8.8/hook", Failed)

	pending, err := inspector.ListPendingTasks(store.WebhookQueue)
	if err != nil {
		t.Fatalf("ListPendingTasks: %v", err)
	}
	var ids []string
	for _, p := range pending {
		ids = append(ids, p.ID)
	}
	if len(pending) != 2 {
		t.Fatalf("pending deliveries = %v, want one for each of the 2 jobs", ids)
	}
	info, err := inspector.GetTaskInfo(store.WebhookQueue, "webhook-"+id)
	if err != nil {
		t.Fatalf("GetTaskInfo(webhook-%s): %v", id, err)
	}
	if info.Type != tasks.TypeWebhook || info.Queue != store.WebhookQueue || info.MaxRetry != 7 {
		t.Errorf("delivery task: type %q, queue %q, max retry %d; want %q, %q, 7", info.Type, info.Queue, info.MaxRetry, tasks.TypeWebhook, store.WebhookQueue)
	}
	var p tasks.WebhookPayload
	if err := json.Unmarshal(info.Payload, &p); err != nil {
		t.Fatalf("payload %s: %v", info.Payload, err)
	}
	want, _ := testEvent(id, Done, at)
	if p.MessageID != "msg_"+id || p.JobID != id || p.URL != "https://8.8.8.8/hook" || string(p.Body) != string(want) {
		t.Errorf("payload = %+v (body %s), want message msg_%s to the URL with the first event %s", p, p.Body, id, want)
	}
}

// TestScheduleWebhookAfterDelivery: a job's end can be announced again after its webhook was delivered
// (a job is run at least once: a worker that dies after announcing but before asynq records the job
// done runs it again, and its last attempt ends again). A second announcement of the same job is a
// no-op, so the receiver must not get the event a second time.
func TestScheduleWebhookAfterDelivery(t *testing.T) {
	t.Parallel()
	rdb := redistest.Embedded(t).Client(t)
	st := store.NewStore(rdb, time.Hour, time.Hour)
	inspector := asynq.NewInspectorFromRedisClient(rdb)
	s := New(Deps{Queue: asynq.NewClientFromRedisClient(rdb), Store: st, Policy: testPolicy, Webhooks: &Webhooks{Event: testEvent}})

	// A webhook worker, as reportd's: WebhookProcessor on the webhook queue, recording through s.
	secret := webhooktest.NewSecret(t, 32)
	signer, err := webhook.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	p := &tasks.WebhookProcessor{Client: webhook.NewClient(webhook.Policy{AllowPrivate: true, AllowInsecure: true}, 5*time.Second),
		Signer: signer, Jobs: s, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:              1,
		Queues:                   map[string]int{store.WebhookQueue: 1},
		TaskCheckInterval:        10 * time.Millisecond,
		DelayedTaskCheckInterval: 100 * time.Millisecond,
		RetryDelayFunc:           tasks.WebhookRetryDelay([]time.Duration{time.Second}),
		ShutdownTimeout:          2 * time.Second,
		Logger:                   tasks.NewLogger(slog.New(slog.DiscardHandler)),
	})
	mux := asynq.NewServeMux()
	mux.Handle(tasks.TypeWebhook, p)
	if err := srv.Start(mux); err != nil {
		t.Fatalf("start webhook worker: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	rc := webhooktest.NewReceiver(t, secret, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })

	ctx := context.Background()
	id := uuid.NewString()
	a := tasks.Attempt{ID: id, CallbackURL: rc.URL, Number: 1, StartedAt: time.Now().UTC(), DaysDone: 1, DaysTotal: 1, Final: true, Report: []byte(`{}`)}
	if _, err := s.EndAttempt(ctx, a); err != nil {
		t.Fatal(err)
	}
	rc.Wait(t, 1, 10*time.Second)
	testkit.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
		info, err := inspector.GetTaskInfo(store.WebhookQueue, "webhook-"+id)
		if errors.Is(err, asynq.ErrTaskNotFound) || err == nil && info.State == asynq.TaskStateCompleted {
			return nil
		}
		return fmt.Errorf("the delivery task is not completed since the receiver accepted it: %+v, %v", info, err)
	})
	if _, err := s.EndAttempt(ctx, a); err != nil {
		t.Fatalf("second EndAttempt: %v", err)
	}
	time.Sleep(time.Second)
	if n := len(rc.Hits()); n != 1 {
		t.Errorf("the receiver got the event of job %s %d times, want once", id, n)
	}
}

// failingQueue refuses every task.
type failingQueue struct{ err error }

func (f failingQueue) EnqueueContext(context.Context, *asynq.Task, ...asynq.Option) (*asynq.TaskInfo, error) {
	return nil, f.err
}

var _ Queue = failingQueue{}

// TestScheduleWebhookError: a queue that fails fails the schedule; one that already holds the job's
// delivery (the task id is the job's) does not.
func TestScheduleWebhookError(t *testing.T) {
	t.Parallel()
	down := errors.New("redis down")
	newService := func(q Queue) *Service {
		return New(Deps{Queue: q, Policy: testPolicy, Webhooks: &Webhooks{Event: testEvent}})
	}
	err := newService(failingQueue{down}).scheduleWebhook(context.Background(), uuid.NewString(), "https://8.8.8.8/", Done)
	if !errors.Is(err, down) {
		t.Errorf("scheduleWebhook on a failing queue = %v, want it to wrap %v", err, down)
	}
	if err := newService(failingQueue{asynq.ErrTaskIDConflict}).scheduleWebhook(context.Background(), uuid.NewString(), "https://8.8.8.8/", Done); err != nil {
		t.Errorf("scheduleWebhook of a delivery already scheduled = %v, want nil", err)
	}
}
