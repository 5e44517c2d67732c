package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/reportd/reportd/client"
)

var benchCommand = command{
	name:    "bench",
	args:    "[-n JOBS] [-c CONCURRENCY] [--range R]",
	summary: "Submit JOBS jobs with CONCURRENCY workers, follow each to its report, and measure; fails if any job is lost.",
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		n := fs.Int("n", 100, "jobs to submit")
		c := fs.Int("c", 8, "workers submitting and following jobs at once")
		rng := fs.String("range", "2026-Q1", "the range of every job")
		return func(ctx context.Context, e *env, _ []string) error {
			if *n < 1 || *c < 1 {
				return usagef("-n and -c must be at least 1")
			}
			b := bench(ctx, e, *n, min(*c, *n), *rng)
			b.print(e.stdout)
			if lost, failed := b.lost(), len(b.errs); lost > 0 || failed > 0 || b.submitted < *n {
				return fmt.Errorf("%d of %d jobs did not give a report (%d lost, %d errors, %d not submitted)",
					*n-b.reports, *n, lost, failed, *n-b.submitted)
			}
			return nil
		}
	},
}

// outcome is what became of one job of a bench.
type outcome struct {
	accepted bool
	finished bool // it reached an end (done, failed or canceled) and Wait saw it
	accept   time.Duration
	toResult time.Duration // from submission to the report in hand
	polls    int
	err      error
	phase    string // where err happened: "submit", "wait"
	// limited and throttled are the 429s Create waited out, and how long it waited.
	limited   int
	throttled time.Duration
}

// benchRun is a bench's outcomes, summed up.
type benchRun struct {
	jobs, workers int
	rng, server   string
	elapsed       time.Duration
	submitted     int
	accepted      int
	finished      int
	reports       int
	accepts       []time.Duration
	toResults     []time.Duration
	polls         []int
	errs          []outcome
	limited       int
	throttled     time.Duration
}

// bench submits n jobs over rng with c workers, follows each to its report with Wait, and sums up.
// When ctx ends it stops submitting, and the jobs it was following count as lost.
func bench(ctx context.Context, e *env, n, c int, rng string) *benchRun {
	b := &benchRun{jobs: n, workers: c, rng: rng, server: e.server}
	todo := make(chan struct{}, n)
	for range n {
		todo <- struct{}{}
	}
	close(todo)
	outcomes := make(chan outcome)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for o := range outcomes {
			b.add(o)
			if e.tty {
				fmt.Fprintf(e.stderr, "\r\x1b[K%d/%d jobs ended, %d errors", b.submitted, n, len(b.errs))
			}
		}
		if e.tty {
			fmt.Fprintln(e.stderr)
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for range todo {
				if ctx.Err() != nil {
					return
				}
				outcomes <- benchJob(ctx, e.client, rng)
			}
		})
	}
	wg.Wait()
	b.elapsed = time.Since(start)
	close(outcomes)
	<-collected
	return b
}

// benchJob submits one job and follows it to its report.
func benchJob(ctx context.Context, c *client.Client, rng string) outcome {
	start := time.Now()
	job, err := c.Create(ctx, rng, client.CreateOptions{})
	o := outcome{accept: time.Since(start)}
	if err != nil {
		o.err, o.phase = err, "submit"
		return o
	}
	o.accepted, o.limited, o.throttled = true, job.RateLimited, job.Throttled
	res, err := c.Wait(ctx, job.StatusURL, nil)
	o.toResult = time.Since(start)
	var je *client.JobError
	switch {
	case errors.As(err, &je):
		o.finished, o.err, o.phase = true, err, "job"
	case err != nil:
		o.err, o.phase = err, "wait"
	default:
		o.finished, o.polls = true, res.Polls
	}
	return o
}

func (b *benchRun) add(o outcome) {
	b.submitted++
	b.limited += o.limited
	b.throttled += o.throttled
	if o.accepted {
		b.accepted++
		b.accepts = append(b.accepts, o.accept)
	}
	if o.finished {
		b.finished++
	}
	if o.err != nil {
		b.errs = append(b.errs, o)
		return
	}
	b.reports++
	b.toResults = append(b.toResults, o.toResult)
	b.polls = append(b.polls, o.polls)
}

// lost is the jobs accepted that were never seen to end.
func (b *benchRun) lost() int { return b.accepted - b.finished }

func (b *benchRun) print(w io.Writer) {
	fmt.Fprintf(w, "bench        %d jobs of %s, %d workers, against %s\n", b.jobs, b.rng, b.workers, b.server)
	fmt.Fprintf(w, "reports      %d in %s: %.1f jobs/s\n", b.reports, formatDuration(b.elapsed), float64(b.reports)/b.elapsed.Seconds())
	fmt.Fprintf(w, "accept       %s\n", percentiles(b.accepts, formatDuration))
	fmt.Fprintf(w, "to result    %s\n", percentiles(b.toResults, formatDuration))
	total := 0
	for _, p := range b.polls {
		total += p
	}
	fmt.Fprintf(w, "polls/job    %s", percentiles(b.polls, strconv.Itoa))
	if len(b.polls) > 0 {
		fmt.Fprintf(w, " (mean %.2f, %d status reads)", float64(total)/float64(len(b.polls)), total)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "errors       %d\n", len(b.errs))
	for _, k := range errorKinds(b.errs) {
		fmt.Fprintf(w, "  %-40s %d\n", k.kind, k.count)
	}
	if b.limited > 0 {
		fmt.Fprintf(w, "rate-limited %d submissions refused with 429 were made again after their Retry-After (%s waited in all):\n"+
			"             the service's per-client limits (REPORTD_RATE_LIMIT, REPORTD_MAX_OPEN_JOBS) held this run to %.1f submissions/s\n",
			b.limited, formatDuration(b.throttled), float64(b.accepted)/b.elapsed.Seconds())
	}
	if b.submitted < b.jobs {
		fmt.Fprintf(w, "not submitted %d (stopped early)\n", b.jobs-b.submitted)
	}
	fmt.Fprintf(w, "lost: %d\n", b.lost())
}

type kindCount struct {
	kind  string
	count int
}

// errorKinds counts errors by kind, most frequent first.
func errorKinds(errs []outcome) []kindCount {
	counts := map[string]int{}
	for _, o := range errs {
		counts[o.phase+": "+kindOf(o.err)]++
	}
	out := make([]kindCount, 0, len(counts))
	for k, n := range counts {
		out = append(out, kindCount{k, n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].count != out[j].count {
			return out[i].count > out[j].count
		}
		return out[i].kind < out[j].kind
	})
	return out
}

// kindOf names the kind of a bench error: a problem by its status and type, a job by how it ended.
func kindOf(err error) string {
	var (
		problem *client.ProblemError
		job     *client.JobError
	)
	switch {
	case errors.As(err, &job):
		if job.Problem != nil {
			return fmt.Sprintf("%s (%s)", job.Job.Status, path.Base(job.Problem.Type))
		}
		return string(job.Job.Status)
	case errors.As(err, &problem):
		return fmt.Sprintf("%d %s", problem.Status, path.Base(problem.Type))
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "interrupted"
	}
	return "transport: " + err.Error()
}

// percentiles summarises xs: p50, p90, p99 and max, by nearest rank.
func percentiles[T cmp.Ordered](xs []T, format func(T) string) string {
	if len(xs) == 0 {
		return "-"
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := func(p int) T { return s[max((p*len(s)+99)/100-1, 0)] } // the ceil(p/100 * n)-th
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s", format(rank(50)), format(rank(90)), format(rank(99)), format(s[len(s)-1]))
}
