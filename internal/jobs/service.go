// Package jobs owns the life of a report job, from the API's submit to the worker's finish: idempotent
// submission, admission limits, the tombstone that tells an expired id (410) from an unknown one (404),
// the per-client index, the enqueue, status reads and waits, cancel markers, deletion, and the finish
// event that wakes waiters and schedules the webhook. Each of these lives here once; the HTTP handlers
// in impl and the asynq processors in tasks call it.
package jobs

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/webhook"
	"github.com/reportd/reportd/tasks"
)

// Queue puts tasks on asynq's queues; *asynq.Client is the production one.
type Queue interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Inspector reads asynq's tasks and deletes those that are not running; *asynq.Inspector is the
// production one.
type Inspector interface {
	GetTaskInfo(queue, id string) (*asynq.TaskInfo, error)
	// DeleteTask removes a task that is not active.
	DeleteTask(queue, id string) error
}

// Store keeps what asynq does not: tombstones of issued ids, finished reports, cancels, idempotency
// keys, the clients' indexes and limits, webhook deliveries, and the job events. *store.Store is the
// production one.
type Store interface {
	Admit(ctx context.Context, a store.Admission) (store.Verdict, error)
	MarkEnqueued(ctx context.Context, client, key string, sub store.Submission) error
	RecordEnd(ctx context.Context, e store.EndRecord) (string, error)
	WriteProgress(ctx context.Context, id string, progress []byte) error
	StartAttempt(ctx context.Context, id string, progress []byte) (bool, error)
	RecordDelivery(ctx context.Context, id string, d store.Delivery) error
	Tombstone(ctx context.Context, id string) (store.Tombstone, bool, error)
	Report(ctx context.Context, id string) (store.Report, error)
	RequestCancel(ctx context.Context, id string, lifetime time.Duration) error
	RequestCancelPending(ctx context.Context, id string, lifetime time.Duration, c store.Canceled) error
	ForgetCanceled(ctx context.Context, id string) error
	CancelRequested(ctx context.Context, id string) (bool, error)
	CanceledJob(ctx context.Context, id string) (store.Canceled, bool, error)
	DeleteJob(ctx context.Context, id, client string, keep time.Duration) error
	PublishCancel(ctx context.Context, id string) error
	ListJobs(ctx context.Context, client string, after store.IndexedJob, n int) ([]store.IndexedJob, error)
	Unindex(ctx context.Context, client string, ids ...string) error
	MarkFinished(ctx context.Context, client, id string) error
	QueueCounts(ctx context.Context, queues []string) (pending, active int64, err error)
	RegisterQueues(ctx context.Context, queues []string) error
	WebhookDelivery(ctx context.Context, id string) (store.Delivery, bool, error)
}

// Policy is how jobs are run and kept.
type Policy struct {
	// Retention is how long a finished job stays readable.
	Retention time.Duration
	// Tombstone is how much longer its id answers 410 Gone rather than 404 Not Found.
	Tombstone time.Duration
	// JobTimeout bounds one attempt of a job.
	JobTimeout time.Duration
	// MaxRetry is how many times a failed attempt is retried.
	MaxRetry int
}

// lifetime bounds how long a job can live before it finishes: every attempt running to its timeout,
// with the longest retry delays between them, plus a day of queueing. The tombstone must outlast it.
func (p Policy) lifetime() time.Duration {
	return time.Duration(p.MaxRetry+1)*(p.JobTimeout+tasks.MaxRetryDelay) + 24*time.Hour
}

// idempotencyTTL is how long an Idempotency-Key is remembered: as long as its job can be readable.
func (p Policy) idempotencyTTL() time.Duration {
	return p.lifetime() + p.Retention
}

// Limits bound what one client may ask of the service.
type Limits struct {
	// SubmitsPerSecond and SubmitBurst bound how fast a client submits jobs; zero means no limit.
	SubmitsPerSecond float64
	SubmitBurst      int
	// MaxOpenJobs bounds a client's unfinished jobs; zero means no limit.
	MaxOpenJobs int
	// MaxStreams bounds the event streams a client has open at once on one API process; zero means
	// DefaultMaxStreams.
	MaxStreams int
}

func (l Limits) maxStreams() int {
	if l.MaxStreams > 0 {
		return l.MaxStreams
	}
	return DefaultMaxStreams
}

// Webhooks is how callback URLs are checked at submit, and how a job's end is announced to them. Nil in
// Deps means webhooks are not set up, and a submission with a callback URL is refused.
type Webhooks struct {
	Policy   webhook.Policy
	Resolver *net.Resolver
	// Event is the body of the webhook that announces that job id ended in state at at: the API's
	// WebhookEvent, which the HTTP layer makes (impl.WebhookEvent), since it holds the job's URLs.
	Event func(id string, state State, at time.Time) ([]byte, error)
}

// Deps are the Service's collaborators.
type Deps struct {
	Queue     Queue
	Inspector Inspector
	Store     Store
	Policy    Policy
	Limits    Limits
	Webhooks  *Webhooks
	Log       *slog.Logger
	// Waiters wakes requests that wait for a job; the caller feeds it the finish events (Waiters.Run).
	// Nil means waits notice a finished job only by re-reading it now and then.
	Waiters *Waiters
	// Accepted, if set, counts accepted jobs (replays excluded).
	Accepted prometheus.Counter
	// Followers feeds event streams the progress of running jobs; the caller feeds it (Followers.Run).
	// Nil means streams see progress only by re-reading now and then.
	Followers *Followers
	// Heartbeat is how often a quiet event stream sends a comment; zero means DefaultHeartbeat.
	Heartbeat time.Duration
	// Fallback is how often, on average, a waiting request or a stream re-reads its job unwoken; zero
	// means DefaultFallback.
	Fallback time.Duration
	// Shards are the report queues new jobs go to (one by default); their ids carry their shard.
	Shards store.Shards
	// Queues are the report queues the Retry-After estimate counts: Shards' and any older ones still
	// served (store.ReportQueues). Nil means Shards'.
	Queues []string
	// Now and NewID are injected so that tests control time and ids; nil means the real ones (NewID:
	// Shards.NewID).
	Now   func() time.Time
	NewID func() uuid.UUID
}

// Service is the job lifecycle. Its methods fail with *problem.Error values for what a client can act
// on; any other error is internal.
type Service struct {
	queue     Queue
	inspector Inspector
	store     Store
	policy    Policy
	limits    Limits
	webhooks  *Webhooks
	log       *slog.Logger
	waiters   *Waiters
	estimate  *waitEstimate
	accepted  prometheus.Counter
	queues    []string
	followers *Followers
	heartbeat time.Duration
	fallback  time.Duration
	now       func() time.Time
	newID     func() uuid.UUID
}

// New returns a Service on d.
func New(d Deps) *Service {
	s := &Service{queue: d.Queue, inspector: d.Inspector, store: d.Store, policy: d.Policy, limits: d.Limits,
		webhooks: d.Webhooks, log: d.Log, waiters: d.Waiters, estimate: &waitEstimate{}, accepted: d.Accepted,
		queues: d.Queues, followers: d.Followers, heartbeat: d.Heartbeat, fallback: d.Fallback, now: d.Now, newID: d.NewID}
	if s.followers == nil {
		s.followers = NewFollowers()
	}
	if s.heartbeat <= 0 {
		s.heartbeat = DefaultHeartbeat
	}
	if s.fallback <= 0 {
		s.fallback = DefaultFallback
	}
	if s.queues == nil {
		s.queues = d.Shards.Queues()
	}
	if s.waiters == nil {
		s.waiters = NewWaiters()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.newID == nil {
		s.newID = d.Shards.NewID
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Policy is how the service runs and keeps jobs.
func (s *Service) Policy() Policy { return s.policy }

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.now() }
