package impl

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/store"
)

var (
	_ jobs.Queue     = (*fakeQueue)(nil)
	_ jobs.Inspector = (*fakeTasks)(nil)
	_ jobs.Store     = (*fakeStore)(nil)
)

// callLog records, across fakes, the order in which they were called.
type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) add(call string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, call)
}

func (l *callLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// enqueuedTask is what fakeQueue saw of one enqueued task: its type, payload, headers, and every
// option (the task's own and the call's) by its type.
type enqueuedTask struct {
	Type    string
	Payload string
	Headers map[string]string
	Options map[asynq.OptionType]any
}

// fakeQueue records the tasks enqueued on it and answers like asynq's client: a pending TaskInfo that
// reflects the task's options. It fails every call with err when err is set.
type fakeQueue struct {
	calls *callLog

	mu    sync.Mutex
	err   error
	tasks []enqueuedTask
}

func (q *fakeQueue) EnqueueContext(_ context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	q.calls.add("enqueue")
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return nil, q.err
	}
	options := map[asynq.OptionType]any{}
	for _, o := range opts {
		options[o.Type()] = o.Value()
	}
	q.tasks = append(q.tasks, enqueuedTask{
		Type: task.Type(), Payload: string(task.Payload()), Headers: maps.Clone(task.Headers()), Options: options,
	})
	info := &asynq.TaskInfo{
		Queue:   "default",
		Type:    task.Type(),
		Payload: task.Payload(),
		Headers: maps.Clone(task.Headers()),
		State:   asynq.TaskStatePending,
		// asynq's defaults, overridden below by the options.
		MaxRetry: 25,
		Timeout:  30 * time.Minute,
	}
	if v, ok := options[asynq.TaskIDOpt].(string); ok {
		info.ID = v
	}
	if v, ok := options[asynq.QueueOpt].(string); ok {
		info.Queue = v
	}
	if v, ok := options[asynq.MaxRetryOpt].(int); ok {
		info.MaxRetry = v
	}
	if v, ok := options[asynq.TimeoutOpt].(time.Duration); ok {
		info.Timeout = v
	}
	if v, ok := options[asynq.RetentionOpt].(time.Duration); ok {
		info.Retention = v
	}
	return info, nil
}

func (q *fakeQueue) enqueued() []enqueuedTask {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.tasks)
}

// fakeTasks answers GetTaskInfo like asynq's inspector from the tasks it holds: unknown ids give an
// error wrapping asynq.ErrTaskNotFound, or asynq.ErrQueueNotFound when noQueue is set (a fresh Redis);
// err, when set, fails every call.
type fakeTasks struct {
	mu      sync.Mutex
	infos   map[string]*asynq.TaskInfo
	noQueue bool
	err     error
	deleted []string
}

func (f *fakeTasks) GetTaskInfo(queue, id string) (*asynq.TaskInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.err != nil:
		return nil, f.err
	case f.noQueue || queue != store.ReportQueue:
		return nil, fmt.Errorf("asynq: %w", asynq.ErrQueueNotFound)
	}
	info, ok := f.infos[id]
	if !ok {
		return nil, fmt.Errorf("asynq: %w", asynq.ErrTaskNotFound)
	}
	c := *info
	return &c, nil
}

func (f *fakeTasks) GetQueueInfo(queue string) (*asynq.QueueInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	qi := &asynq.QueueInfo{Queue: queue}
	for _, info := range f.infos {
		switch info.State {
		case asynq.TaskStatePending:
			qi.Pending++
		case asynq.TaskStateActive:
			qi.Active++
		}
	}
	return qi, nil
}

// DeleteTask deletes a task that is not active, as asynq's inspector does.
func (f *fakeTasks) DeleteTask(_, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	info, ok := f.infos[id]
	switch {
	case !ok:
		return fmt.Errorf("asynq: %w", asynq.ErrTaskNotFound)
	case info.State == asynq.TaskStateActive:
		return fmt.Errorf("asynq: cannot delete task in active state")
	}
	delete(f.infos, id)
	f.deleted = append(f.deleted, id)
	return nil
}

func (f *fakeTasks) put(info *asynq.TaskInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.infos == nil {
		f.infos = map[string]*asynq.TaskInfo{}
	}
	f.infos[info.ID] = info
}

// fakeStore keeps tombstones, reports, cancels and idempotency records in maps, and records the
// admissions and the ends of jobs. Each *Err, when set, fails the method it names.
type fakeStore struct {
	calls *callLog

	mu          sync.Mutex
	tombstones  map[string]bool
	reports     map[string][]byte
	admitted    []store.Admission
	admitErr    error
	existsErr   error
	reportErr   error
	cancels     map[string]bool
	canceled    map[string]store.Canceled
	forgotten   []string
	published   []string
	idem        map[string]store.Submission
	ended       []store.EndRecord
	endRecords  map[string]store.Tombstone
	cancelsSent []string
	onCancel    func(id string)
}

func (s *fakeStore) RequestCancel(_ context.Context, id string, _ time.Duration) error {
	s.calls.add("cancel-marker")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancels == nil {
		s.cancels = map[string]bool{}
	}
	s.cancels[id] = true
	return nil
}

// RequestCancelPending is RequestCancel with the canceled record written in the same step, as the real
// one's transaction does.
func (s *fakeStore) RequestCancelPending(ctx context.Context, id string, lifetime time.Duration, c store.Canceled) error {
	if err := s.RequestCancel(ctx, id, lifetime); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.canceled == nil {
		s.canceled = map[string]store.Canceled{}
	}
	s.canceled[id] = c
	return nil
}

func (s *fakeStore) ForgetCanceled(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.canceled, id)
	return nil
}

func (s *fakeStore) CanceledJob(_ context.Context, id string) (store.Canceled, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.existsErr != nil {
		return store.Canceled{}, false, s.existsErr
	}
	c, ok := s.canceled[id]
	return c, ok, nil
}

func (s *fakeStore) DeleteJob(_ context.Context, id, _ string, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.reports, id)
	delete(s.canceled, id)
	delete(s.cancels, id)
	s.forgotten = append(s.forgotten, id)
	return nil
}

// PublishCancel records the cancel; onCancel, when set, plays the worker's part.
func (s *fakeStore) PublishCancel(_ context.Context, id string) error {
	s.mu.Lock()
	s.cancelsSent = append(s.cancelsSent, id)
	on := s.onCancel
	s.mu.Unlock()
	if on != nil {
		on(id)
	}
	return nil
}

// Tombstone answers for the anonymous client, the only one the fakes serve.
func (s *fakeStore) Tombstone(_ context.Context, id string) (store.Tombstone, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.existsErr != nil {
		return store.Tombstone{}, false, s.existsErr
	}
	return s.endRecords[id], s.tombstones[id], nil
}

// WriteProgress records nothing: the fakes' tasks do not run.
func (s *fakeStore) WriteProgress(context.Context, string, []byte) error { return nil }

// StartAttempt records nothing either, and answers as CancelRequested does.
func (s *fakeStore) StartAttempt(ctx context.Context, id string, _ []byte) (bool, error) {
	return s.CancelRequested(ctx, id)
}

// RecordDelivery records nothing: the fakes deliver no webhooks.
func (s *fakeStore) RecordDelivery(context.Context, string, store.Delivery) error { return nil }

func (s *fakeStore) ListJobs(context.Context, string, store.IndexedJob, int) ([]store.IndexedJob, error) {
	return nil, nil
}

func (s *fakeStore) Unindex(context.Context, string, ...string) error { return nil }

func (s *fakeStore) CancelRequested(_ context.Context, id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancels[id], nil
}

// WebhookDelivery answers that no delivery was attempted: the fakes serve no webhooks.
func (s *fakeStore) WebhookDelivery(context.Context, string) (store.Delivery, bool, error) {
	return store.Delivery{}, false, nil
}

// Report answers a stored report as one stored before reports named their owner, so that a result read
// reads the job from the fake inspector as well.
func (s *fakeStore) Report(_ context.Context, id string) (store.Report, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reportErr != nil {
		return store.Report{}, s.reportErr
	}
	b, ok := s.reports[id]
	if !ok {
		return store.Report{}, fmt.Errorf("job %s: %w", id, store.ErrNoReport)
	}
	return store.Report{Body: b}, nil
}

// Admit claims the key and admits the job, as the real script does without limits.
func (s *fakeStore) Admit(_ context.Context, a store.Admission) (store.Verdict, error) {
	s.calls.add("admit")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.admitErr != nil {
		return store.Verdict{}, s.admitErr
	}
	if a.Key != "" {
		if held, ok := s.idem[a.Client+"\x00"+a.Key]; ok {
			return store.Verdict{Held: &held}, nil
		}
		if s.idem == nil {
			s.idem = map[string]store.Submission{}
		}
		s.idem[a.Client+"\x00"+a.Key] = a.Record
	}
	s.admitted = append(s.admitted, a)
	return store.Verdict{Admitted: true}, nil
}

func (s *fakeStore) MarkEnqueued(_ context.Context, client, key string, sub store.Submission) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.idem[client+"\x00"+key]; ok {
		sub.Enqueued = true
		s.idem[client+"\x00"+key] = sub
	}
	return nil
}

// RecordEnd records the end as the real script does: a done job's report unless it was canceled, a
// canceled one's record, the tombstone, and the finish event.
func (s *fakeStore) RecordEnd(_ context.Context, e store.EndRecord) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = append(s.ended, e)
	if !e.Final {
		return e.Outcome, nil
	}
	outcome := e.Outcome
	switch {
	case outcome == "done" && s.cancels[e.ID]:
		outcome = "canceled"
	case outcome == "done":
		if s.reports == nil {
			s.reports = map[string][]byte{}
		}
		s.reports[e.ID] = e.Report
	case e.Canceled != nil:
		if s.canceled == nil {
			s.canceled = map[string]store.Canceled{}
		}
		s.canceled[e.ID] = *e.Canceled
	}
	if s.tombstones == nil {
		s.tombstones, s.endRecords = map[string]bool{}, map[string]store.Tombstone{}
	}
	s.tombstones[e.ID] = true
	s.endRecords[e.ID] = store.Tombstone{Outcome: outcome, Progress: e.Progress}
	s.published = append(s.published, e.ID)
	return outcome, nil
}

func (s *fakeStore) MarkFinished(context.Context, string, string) error { return nil }

// QueueCounts answers an empty queue.
func (s *fakeStore) QueueCounts(context.Context, []string) (int64, int64, error) { return 0, 0, nil }

func (s *fakeStore) RegisterQueues(context.Context, []string) error {
	s.calls.add("register-queues")
	return nil
}

func (s *fakeStore) admissions() []store.Admission {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.admitted)
}
