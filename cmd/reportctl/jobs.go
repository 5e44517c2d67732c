package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/reportd/reportd/client"
	"github.com/reportd/reportd/gen"
)

var statusCommand = command{
	name:     "status",
	args:     "ID",
	summary:  "Read a job's status once (a done job shows its result's URL; the report is not fetched).",
	needArgs: 1,
	flags: func(*flag.FlagSet) func(context.Context, *env, []string) error {
		return onJob(func(ctx context.Context, e *env, id string) error {
			st, err := e.client.Status(ctx, id)
			if err != nil {
				return err
			}
			printStatus(e.stdout, st)
			return nil
		})
	},
}

var resultCommand = command{
	name:     "result",
	args:     "ID [--csv] [--indent] [-o FILE]",
	summary:  "Print a done job's report as the service sends it (JSON), or its daily table as CSV, or write it to a file.",
	needArgs: 1,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		csv := fs.Bool("csv", false, "the daily table as CSV instead of the report as JSON")
		indent := fs.Bool("indent", false, "indent the JSON, its keys in the order the service sent them")
		out := fs.String("o", "", "write to `FILE` instead of stdout (CSV when it is named *.csv)")
		return onJob(func(ctx context.Context, e *env, id string) error {
			return saveReport(ctx, e, id, nil, *out, isCSV(*csv, *out), *indent)
		})
	},
}

var cancelCommand = command{
	name:     "cancel",
	args:     "ID",
	summary:  "Cancel a pending or running job for good; its status stays readable (canceled) until it expires.",
	needArgs: 1,
	flags: func(*flag.FlagSet) func(context.Context, *env, []string) error {
		return onJob(func(ctx context.Context, e *env, id string) error {
			st, err := e.client.Cancel(ctx, id)
			if err != nil {
				return err
			}
			if st.State == gen.Canceled {
				fmt.Fprintf(e.stdout, "canceled %s\n", st.ID)
			} else {
				fmt.Fprintf(e.stdout, "cancel requested for %s: it is stopping (status %s); its status will say canceled\n", st.ID, st.State)
			}
			return nil
		})
	},
}

var deleteCommand = command{
	name:     "delete",
	args:     "ID",
	summary:  "Delete a finished job (done, failed or canceled) and its report now; a running one must be canceled first.",
	needArgs: 1,
	flags: func(*flag.FlagSet) func(context.Context, *env, []string) error {
		return onJob(func(ctx context.Context, e *env, id string) error {
			if err := e.client.Delete(ctx, id); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "deleted %s: it and its report are gone\n", id)
			return nil
		})
	},
}

// onJob is the run of a command whose argument is a job id: it refuses one that cannot be, as a usage
// error, before do sees it.
func onJob(do func(ctx context.Context, e *env, id string) error) func(context.Context, *env, []string) error {
	return func(ctx context.Context, e *env, args []string) error {
		if err := checkID(args[0]); err != nil {
			return err
		}
		return do(ctx, e, args[0])
	}
}

// checkID refuses an argument that cannot be a job id, as a usage error.
func checkID(id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return usagef("%q is not a job id (a UUID, as create prints)", id)
	}
	return nil
}

// printStatus prints a status reading, one field a line.
func printStatus(w io.Writer, st *client.Status) {
	field := func(name, format string, args ...any) {
		fmt.Fprintf(w, "%-12s "+format+"\n", append([]any{name}, args...)...)
	}
	field("job", "%s", st.ID)
	field("status", "%s", st.State)
	if st.Done {
		field("result", "%s", st.ResultURL)
		if !st.Expires.IsZero() {
			field("expires", "%s", st.Expires.UTC().Format(time.RFC3339))
		}
	}
	j := st.Job
	if j == nil {
		return
	}
	field("range", "%s..%s", j.Range.From, j.Range.To)
	field("progress", "%.0f%%", j.Progress*100)
	if j.Attempt != nil {
		field("attempt", "%d", *j.Attempt)
	}
	field("created", "%s", j.CreatedAt.UTC().Format(time.RFC3339))
	for _, t := range []struct {
		name string
		at   *time.Time
	}{{"started", j.StartedAt}, {"finished", j.FinishedAt}, {"expires", j.ExpiresAt}} {
		if t.at != nil {
			field(t.name, "%s", t.at.UTC().Format(time.RFC3339))
		}
	}
	if j.CancelRequested != nil && *j.CancelRequested {
		field("cancel", "requested")
	}
	if j.Error != nil {
		field("error", "%s: %s", j.Error.Title, j.Error.Detail)
	}
	if j.Webhook != nil {
		field("webhook", "%s, %d attempt(s)", j.Webhook.Url, j.Webhook.Attempts)
	}
	if st.RetryAfter > 0 {
		field("retry after", "%s", formatDuration(st.RetryAfter))
	}
}

var listCommand = command{
	name:    "list",
	args:    "[--status S] [--limit N] [--cursor C]",
	summary: "List your jobs, newest first, a page at a time (the last line gives the next page's cursor).",
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		status := fs.String("status", "", "only jobs in this `status` (pending, running, done, failed, canceled)")
		limit := fs.Int("limit", 0, "at most `N` jobs (1 to 100; the service's default is 20)")
		cursor := fs.String("cursor", "", "the page after the one that gave this `cursor`")
		return func(ctx context.Context, e *env, _ []string) error {
			page, err := e.client.List(ctx, client.ListOptions{Status: gen.JobState(*status), Limit: *limit, Cursor: *cursor})
			if err != nil {
				return err
			}
			printJobs(e.stdout, page.Jobs)
			if page.Next != "" {
				// The cursor holds the place, not the filter: the next page's command repeats both.
				next := "reportctl list"
				if *status != "" {
					next += " --status " + *status
				}
				if *limit != 0 {
					next += " --limit " + strconv.Itoa(*limit)
				}
				fmt.Fprintf(e.stdout, "next page: %s --cursor %s\n", next, page.Next)
			}
			return nil
		}
	},
}

// listRow is the layout of list's rows, header and jobs alike.
const listRow = "%-36s  %-8s  %8s  %-22s  %s\n"

// printJobs prints jobs as a table under a header row (the header alone when there are none).
func printJobs(w io.Writer, jobs []gen.JobStatus) {
	fmt.Fprintf(w, listRow, "JOB", "STATUS", "PROGRESS", "RANGE", "CREATED")
	for _, j := range jobs {
		fmt.Fprintf(w, listRow, j.Id, j.Status, fmt.Sprintf("%.0f%%", j.Progress*100),
			j.Range.From.Format(time.DateOnly)+".."+j.Range.To.Format(time.DateOnly), j.CreatedAt.UTC().Format(time.RFC3339))
	}
}

var watchCommand = command{
	name:     "watch",
	args:     "ID [-o FILE] [--csv]",
	summary:  "Follow a job to its end, showing its progress, then print its report's totals.",
	needArgs: 1,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		csv := fs.Bool("csv", false, "with -o: the daily table as CSV")
		out := fs.String("o", "", "also write the report to `FILE` (CSV when it is named *.csv)")
		return onJob(func(ctx context.Context, e *env, id string) error {
			return watch(ctx, e, id, *out, isCSV(*csv, *out))
		})
	},
}

// watch follows job id, which someone submitted before: it reads the job's status first and says what
// it is now (a job not found, or expired, ends here with its problem), then follows it as create
// --wait does.
func watch(ctx context.Context, e *env, id, out string, csv bool) error {
	st, err := e.client.Status(ctx, id)
	if err != nil {
		return err
	}
	job := &client.Job{ID: id, StatusURL: st.URL, Status: st.Job, Done: st.Done, ResultURL: st.ResultURL}
	fmt.Fprintf(e.stderr, "job %s is %s; following %s\n", id, describe(st), job.StatusURL)
	return follow(ctx, e, job, out, csv)
}

// describe says in a few words where a job stands: "running, 42% done, attempt 1".
func describe(st *client.Status) string {
	s := string(st.State)
	j := st.Job
	if j == nil || st.Done {
		return s
	}
	if j.Status == gen.Running || j.Progress > 0 {
		s += fmt.Sprintf(", %.0f%% done", j.Progress*100)
	}
	if j.Attempt != nil {
		s += fmt.Sprintf(", attempt %d", *j.Attempt)
	}
	return s
}
