package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/reportd/reportd/client"
	"github.com/reportd/reportd/gen"
)

var createCommand = command{
	name:    "create",
	args:    "--range R [--wait [-o FILE] [--csv]] [--idempotency-key K] [--callback-url U]",
	summary: "Submit a report job; print its id (first line) and status URL, or with --wait follow it to its report.",
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		rng := fs.String("range", "", "the days to report on: a quarter 2026-Q1, a month 2026-01, a day 2026-01-15, or 2026-01-01..2026-02-15 (required)")
		wait := fs.Bool("wait", false, "follow the job to its report and print its totals, showing progress on stderr")
		key := fs.String("idempotency-key", "", "a key that makes retrying this submission safe: the same key gets the same job")
		callback := fs.String("callback-url", "", "an https `URL` the service POSTs a signed event to when the job finishes")
		out := fs.String("o", "", "with --wait, also write the report to `FILE` (JSON; CSV with --csv or a .csv name)")
		csv := fs.Bool("csv", false, "with -o, write the daily table as CSV")
		return func(ctx context.Context, e *env, _ []string) error {
			if *rng == "" {
				return usagef("--range is required")
			}
			if (*out != "" || *csv) && !*wait {
				return usagef("-o and --csv need --wait (or use: reportctl result ID -o FILE)")
			}
			job, err := e.client.Create(ctx, *rng, client.CreateOptions{IdempotencyKey: *key, CallbackURL: *callback})
			if err != nil {
				return err
			}
			if !*wait {
				fmt.Fprintln(e.stdout, job.ID)
				fmt.Fprintf(e.stdout, "status_url %s\n", job.StatusURL)
				if job.Done {
					fmt.Fprintf(e.stdout, "status     done\nresult_url %s\n", job.ResultURL)
				} else {
					fmt.Fprintf(e.stdout, "status     %s\n", job.Status.Status)
				}
				return nil
			}
			fmt.Fprintf(e.stderr, "job %s accepted; following %s\n", job.ID, job.StatusURL)
			return follow(ctx, e, job, *out, isCSV(*csv, *out))
		}
	},
}

// follow waits for job with progress on stderr, prints its report's summary, and saves the report to
// out if it is set.
func follow(ctx context.Context, e *env, job *client.Job, out string, csv bool) error {
	p := newProgress(e.stderr, e.tty)
	if job.Status != nil {
		p.update(*job.Status)
	}
	// The progress comes from the job's event stream as it changes; once the stream has ended (or if
	// the service refuses it: an older one, or too many streams open), Wait reads the end, polling.
	if err := streamProgress(ctx, e.client, job.ID, p.update); err != nil && ctx.Err() == nil {
		fmt.Fprintf(e.stderr, "no event stream (%v): polling instead\n", err)
	}
	res, err := e.client.Wait(ctx, job.StatusURL, p.update)
	p.stop(err == nil)
	if err != nil {
		return err
	}
	printSummary(e.stdout, res.Report, res.URL)
	if out != "" {
		return saveReport(ctx, e, job.ID, res.JSON, out, csv, false)
	}
	return nil
}

// streamProgress hands update every status of job id's event stream until its terminal event.
func streamProgress(ctx context.Context, c *client.Client, id string, update func(gen.JobStatus)) error {
	for ev, err := range c.Events(ctx, id) {
		if err != nil {
			return err
		}
		if ev.Kind == client.EventStatus && ev.Status != nil {
			update(*ev.Status)
		}
	}
	return nil
}
