// Package impl is reportd's hand-written HTTP server: it satisfies the strict-server interface generated
// from openapi.yaml, puts the spec's request validator in front of it, and turns every failure into an
// RFC 9457 problem. Requests come in over HTTP; jobs go out to asynq on Redis.
package impl

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/webhook"
	"github.com/reportd/reportd/tasks"
)

var _ gen.StrictServerInterface = (*Server)(nil)

// Enqueuer puts tasks on the queue; *asynq.Client is the production one.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// TaskReader reads and stops tasks; *asynq.Inspector is the production one.
type TaskReader interface {
	GetTaskInfo(queue, id string) (*asynq.TaskInfo, error)
	GetQueueInfo(queue string) (*asynq.QueueInfo, error)
	// DeleteTask removes a task that is not active.
	DeleteTask(queue, id string) error
}

// JobStore keeps what asynq does not: tombstones of issued ids, finished reports, cancels and
// idempotency keys. *tasks.Store is the production one.
type JobStore interface {
	CreateTombstone(ctx context.Context, id, client string, lifetime time.Duration) error
	Tombstone(ctx context.Context, id string) (client string, ok bool, err error)
	Report(ctx context.Context, id string) ([]byte, error)
	RequestCancel(ctx context.Context, id string, lifetime time.Duration) error
	SaveCanceled(ctx context.Context, id string, c tasks.Canceled) error
	CanceledJob(ctx context.Context, id string) (tasks.Canceled, bool, error)
	Forget(ctx context.Context, id string) error
	PublishFinished(ctx context.Context, id string) error
	PublishCancel(ctx context.Context, id string) error
	ClaimIdempotencyKey(ctx context.Context, client, key string, sub tasks.Submission, ttl time.Duration) (tasks.Submission, bool, error)
	MarkEnqueued(ctx context.Context, client, key string, sub tasks.Submission) error
	ReleaseIdempotencyKey(ctx context.Context, client, key string) error
	IndexJob(ctx context.Context, client, id string, at time.Time, keep time.Duration) error
	ListJobs(ctx context.Context, client string, after tasks.IndexedJob, n int) ([]tasks.IndexedJob, error)
	Unindex(ctx context.Context, client string, ids ...string) error
	JobClosed(ctx context.Context, client, id string) error
	OpenJobs(ctx context.Context, client string) ([]string, error)
	AllowSubmit(ctx context.Context, client string, perSecond float64, burst int) (bool, time.Duration, error)
}

// Limits bound what one client may ask of the service.
type Limits struct {
	// SubmitsPerSecond and SubmitBurst bound how fast a client submits jobs; zero means no limit.
	SubmitsPerSecond float64
	SubmitBurst      int
	// MaxOpenJobs bounds a client's unfinished jobs; zero means no limit.
	MaxOpenJobs int
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

// Deps are the Server's collaborators.
type Deps struct {
	Queue  Enqueuer
	Tasks  TaskReader
	Store  JobStore
	Policy Policy
	Log    *slog.Logger
	// Webhooks is how callbacks are checked and read; nil means webhooks are not set up, and a
	// submission with a callback_url is refused.
	Webhooks *Webhooks
	// Metrics, if set, counts accepted jobs.
	Metrics *Metrics
	// APIKeys are the clients' keys; none means the API is open, as one anonymous client.
	APIKeys []APIKey
	// Limits bound each client.
	Limits Limits
	// Waiters wakes requests that wait for a job (Prefer: wait); the caller runs it on the job events.
	// Nil means waits notice a finished job only by re-reading it now and then.
	Waiters *Waiters
	// Now and NewID are injected so that tests control time and ids; nil means the real ones.
	Now   func() time.Time
	NewID func() uuid.UUID
}

// Server implements gen.StrictServerInterface.
type Server struct {
	queue    Enqueuer
	tasks    TaskReader
	store    JobStore
	policy   Policy
	log      *slog.Logger
	now      func() time.Time
	newID    func() uuid.UUID
	waiters  *Waiters
	pace     *pace
	webhooks *Webhooks
	metrics  *Metrics
	keys     []APIKey
	limits   Limits
}

// DeliveryReader reads the state of a job's webhook; *tasks.Store is the production one.
type DeliveryReader interface {
	WebhookDelivery(ctx context.Context, id string) (tasks.Delivery, bool, error)
}

// Webhooks is the API's side of webhooks: which callback URLs to accept, and where deliveries are
// recorded.
type Webhooks struct {
	Policy     webhook.Policy
	Resolver   *net.Resolver
	Deliveries DeliveryReader
}

// New returns a Server on d.
func New(d Deps) *Server {
	s := &Server{queue: d.Queue, tasks: d.Tasks, store: d.Store, policy: d.Policy, log: d.Log, now: d.Now, newID: d.NewID,
		waiters: d.Waiters, pace: &pace{}, webhooks: d.Webhooks, metrics: d.Metrics,
		keys: d.APIKeys, limits: d.Limits}
	if s.waiters == nil {
		s.waiters = NewWaiters()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.newID == nil {
		s.newID = uuid.New
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
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
