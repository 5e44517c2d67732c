// Command reportctl drives a reportd service from the command line: it submits report jobs, follows
// them to their reports, reads, downloads, cancels and deletes them, and load-tests the service.
//
//	reportctl create --range 2026-Q1 --wait      submit a job, follow it, print the report's totals
//	reportctl status ID                          one reading of a job's status
//	reportctl result ID --csv -o q1.csv          download a report
//	reportctl cancel ID                          cancel a pending or running job (its status stays)
//	reportctl delete ID                          delete a finished job and its report
//	reportctl bench -n 200 -c 16                 submit jobs concurrently and measure them
//
// The service is --server, or REPORTD_URL, or http://localhost:8080. Run "reportctl help" or
// "reportctl COMMAND --help" for the flags. It exits 0 on success, 1 when the service or a job says
// no, and 2 for a command line it cannot use.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
