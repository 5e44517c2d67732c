package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// sse answers with an event stream of frames.
func sse(frames ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for _, f := range frames {
			fmt.Fprint(w, f)
			w.(http.Flusher).Flush()
		}
	}
}

func statusFrame(id, state string, progress float64) string {
	b, _ := json.Marshal(jobStatus(state, progress, nil))
	return fmt.Sprintf("id: %s\nevent: status\ndata: %s\n\n", id, b)
}

// TestEvents: a stream's events in order, ending with the terminal one; a stream that breaks off is
// reconnected with Last-Event-ID; a reconnect answered 204 ends the sequence; a refusal is its problem.
func TestEvents(t *testing.T) {
	t.Parallel()
	done := fmt.Sprintf("id: done\nevent: done\ndata: {\"id\":%q,\"result\":\"/v1/reports/%s/result\"}\n\n", jobID, jobID)
	tests := []struct {
		name       string
		script     []http.HandlerFunc
		wantKinds  string
		wantLastID []string // the Last-Event-ID of each request
		wantErr    string   // a problem type, or "broke"
	}{
		{name: "whole", script: []http.HandlerFunc{sse("retry: 10\n\n", ": hi\n\n", statusFrame("pending.0.0", "pending", 0), statusFrame("running.1.5000", "running", 0.5), done)},
			wantKinds: "status,status,done", wantLastID: []string{""}},
		{name: "reconnect", script: []http.HandlerFunc{sse("retry: 10\n\n", statusFrame("running.1.2500", "running", 0.25)), sse(statusFrame("running.1.7500", "running", 0.75), done)},
			wantKinds: "status,status,done", wantLastID: []string{"", "running.1.2500"}},
		{name: "server-error-event", script: []http.HandlerFunc{sse("retry: 10\n\n", statusFrame("running.1.2500", "running", 0.25), "event: error\ndata: {}\n\n"), sse(done)},
			wantKinds: "status,done", wantLastID: []string{"", "running.1.2500"}},
		{name: "ended-already", script: []http.HandlerFunc{sse("retry: 10\n\n", statusFrame("running.1.2500", "running", 0.25)), func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }},
			wantKinds: "status", wantLastID: []string{"", "running.1.2500"}},
		{name: "refused", script: []http.HandlerFunc{problem(http.StatusNotFound, "job-not-found", "Job not found", "no job")}, wantErr: "/problems/job-not-found", wantLastID: []string{""}},
		{name: "breaks-off", script: []http.HandlerFunc{sse("retry: 1\n\n")}, wantErr: "broke",
			wantLastID: []string{"", "", "", "", "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, tt.script...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			kinds, gotErr := "", error(nil)
			for ev, err := range f.client().Events(ctx, jobID) {
				if err != nil {
					gotErr = err
					break
				}
				if kinds != "" {
					kinds += ","
				}
				kinds += string(ev.Kind)
				if ev.Kind == EventDone && ev.ResultURL != f.srv.URL+"/v1/reports/"+jobID+"/result" {
					t.Errorf("done event's result URL %q", ev.ResultURL)
				}
				if ev.Kind == EventStatus && (ev.Status == nil || ev.Status.Id.String() != jobID) {
					t.Errorf("status event without the job's status: %+v", ev)
				}
			}
			var pe *ProblemError
			switch {
			case tt.wantErr == "broke" && (gotErr == nil || errors.As(gotErr, &pe)):
				t.Errorf("err %v, want the stream broken off", gotErr)
			case tt.wantErr != "" && tt.wantErr != "broke" && (!errors.As(gotErr, &pe) || pe.Type != tt.wantErr):
				t.Errorf("err %v, want a %s problem", gotErr, tt.wantErr)
			case tt.wantErr == "" && (gotErr != nil || kinds != tt.wantKinds):
				t.Errorf("events %s, err %v; want %s", kinds, gotErr, tt.wantKinds)
			}
			var got []string
			for _, r := range f.seen() {
				got = append(got, r.header.Get("Last-Event-ID"))
				if r.path != "/v1/reports/"+jobID+"/events" || r.header.Get("Accept") != "text/event-stream" {
					t.Errorf("request %s %v", r.path, r.header)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantLastID) {
				t.Errorf("Last-Event-ID of each request %q, want %q", got, tt.wantLastID)
			}
		})
	}
}
