package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/reportd/reportd/client"
	"github.com/reportd/reportd/gen"
)

// exampleID is the job the example service issues.
const exampleID = "0f8fad5b-d9cb-469f-a165-70867728950e"

// exampleService is a stand-in for reportd with one job, done as soon as it is asked for: enough to
// show the client's calls with output that does not change between runs.
func exampleService() *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/reports", func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Prefer"), "wait=") {
			w.Header().Set("Location", "/v1/reports/"+exampleID+"/result")
			w.WriteHeader(http.StatusSeeOther)
			return
		}
		w.Header().Set("Location", "/v1/reports/"+exampleID)
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"id":%q,"status":"pending","progress":0,"range":{"from":"2026-01-01","to":"2026-03-31"},
			"created_at":"2026-04-01T10:00:00Z","links":{"self":"/v1/reports/%s"}}`, exampleID, exampleID)
	})
	mux.HandleFunc("GET /v1/reports/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != exampleID {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"type":"/problems/job-not-found","title":"Job not found","status":404,"detail":"Job %s was not found."}`, r.PathValue("id"))
			return
		}
		w.Header().Set("Location", "/v1/reports/"+exampleID+"/result")
		w.WriteHeader(http.StatusSeeOther)
	})
	mux.HandleFunc("GET /v1/reports/{id}/result", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q,"range":{"from":"2026-01-01","to":"2026-03-31"},"generated_at":"2026-04-01T10:00:02Z",
			"orders":1200,"units":3100,"revenue_cents":4567890,"by_region":[],"by_product":[],"by_day":[]}`, exampleID)
	})
	return httptest.NewServer(mux)
}

func ExampleNew() {
	c, err := client.New("http://localhost:8080", client.WithUserAgent("nightly-export/2"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.StatusURL(exampleID))
	// Output: http://localhost:8080/v1/reports/0f8fad5b-d9cb-469f-a165-70867728950e
}

func ExampleClient_Create() {
	srv := exampleService()
	defer srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		log.Fatal(err)
	}

	job, err := c.Create(context.Background(), "2026-Q1", client.CreateOptions{IdempotencyKey: "q1-export"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(job.ID, job.Status.Status, strings.TrimPrefix(job.StatusURL, srv.URL), job.RetryAfter)
	// Output: 0f8fad5b-d9cb-469f-a165-70867728950e pending /v1/reports/0f8fad5b-d9cb-469f-a165-70867728950e 1s
}

// A submission may ask the service to hold its answer until the job is done: a short job then answers
// with its result's URL at once.
func ExampleClient_Create_wait() {
	srv := exampleService()
	defer srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		log.Fatal(err)
	}

	job, err := c.Create(context.Background(), "2026-Q1", client.CreateOptions{Wait: 10 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(job.Done, strings.TrimPrefix(job.ResultURL, srv.URL))
	// Output: true /v1/reports/0f8fad5b-d9cb-469f-a165-70867728950e/result
}

func ExampleClient_Wait() {
	srv := exampleService()
	defer srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	job, err := c.Create(ctx, "2026-Q1", client.CreateOptions{})
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.Wait(ctx, job.StatusURL, func(s gen.JobStatus) {
		fmt.Printf("%s %.0f%%\n", s.Status, s.Progress*100) // not called here: the job is done at once
	})
	var failed *client.JobError
	switch {
	case errors.As(err, &failed):
		log.Fatalf("job %s: %v", failed.Job.Status, failed.Problem)
	case err != nil:
		log.Fatal(err)
	}
	r := res.Report
	fmt.Printf("%s..%s: %d orders, %d units, %d cents (%d status reads)\n", r.Range.From, r.Range.To, r.Orders, r.Units, r.RevenueCents, res.Polls)
	// Output: 2026-01-01..2026-03-31: 1200 orders, 3100 units, 4567890 cents (1 status reads)
}

func ExampleProblemError() {
	srv := exampleService()
	defer srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		log.Fatal(err)
	}

	_, err = c.Status(context.Background(), "00000000-0000-4000-8000-000000000000")
	var p *client.ProblemError
	if errors.As(err, &p) {
		fmt.Println(p.Status, p.Type)
		fmt.Println(err)
	}
	// Output:
	// 404 /problems/job-not-found
	// Job not found: Job 00000000-0000-4000-8000-000000000000 was not found.
}
