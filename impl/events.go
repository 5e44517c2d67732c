package impl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/httpapi"
	"github.com/reportd/reportd/internal/jobs"
)

// sseRetry is the reconnection delay a stream asks EventSource for, in milliseconds.
const sseRetry = 2000

// StreamReportEvents follows a job as Server-Sent Events: a 404 or 410 before any event for an id the
// client cannot read, 204 for a reconnect after the terminal event, and otherwise the stream.
func (s *Server) StreamReportEvents(ctx context.Context, req gen.StreamReportEventsRequestObject) (gen.StreamReportEventsResponseObject, error) {
	last := ""
	if req.Params.LastEventID != nil {
		last = strings.TrimSpace(*req.Params.LastEventID)
	}
	if jobs.TerminalEventID(last) {
		return gen.StreamReportEvents204Response{}, nil
	}
	st, err := s.jobs.OpenStream(ctx, httpapi.Client(ctx), req.Id.String())
	if err != nil {
		return nil, err
	}
	return eventStream{ctx: ctx, s: s, stream: st, last: last}, nil
}

// eventStream writes a job's stream as the answer: the strict server hands the response writer to it.
type eventStream struct {
	ctx    context.Context
	s      *Server
	stream *jobs.Stream
	last   string
}

// VisitStreamReportEventsResponse sends the stream: each event flushed as it is written, a comment
// every heartbeat while nothing else is, no write deadline (the server's would cut a long job's stream).
func (e eventStream) VisitStreamReportEventsResponse(w http.ResponseWriter) error {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})

	var mu sync.Mutex // the heartbeat and the events write in turn
	write := func(frame string) error {
		mu.Lock()
		defer mu.Unlock()
		if _, err := fmt.Fprint(w, frame); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := write(fmt.Sprintf("retry: %d\n\n", sseRetry)); err != nil {
		return nil // the client went away
	}
	ctx, stop := context.WithCancel(e.ctx)
	var heartbeat sync.WaitGroup
	// The heartbeat has stopped writing before the handler returns: net/http finishes the response then.
	defer func() { stop(); heartbeat.Wait() }()
	heartbeat.Go(func() {
		t := time.NewTicker(e.s.jobs.Heartbeat())
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if write(": keep-alive\n\n") != nil {
					stop()
					return
				}
			}
		}
	})
	err := e.stream.Follow(ctx, e.last, func(ev jobs.Event) error {
		data, err := e.s.eventData(ev)
		if err != nil {
			return err
		}
		return write(fmt.Sprintf("id: %s\nevent: %s\ndata: %s\n\n", ev.ID, eventKind(ev.Job), data))
	})
	if err != nil && ctx.Err() == nil {
		// Headers are sent: say why in a last event rather than a status code.
		_ = write("event: error\ndata: {\"title\":\"The stream stopped\",\"detail\":\"reconnect, or poll the status URL\"}\n\n")
	}
	return nil
}

// eventKind is the kind of the stream's event that shows job j: status while it is unfinished, then its
// terminal state.
func eventKind(j jobs.Job) gen.JobEventKind {
	switch j.State {
	case jobs.Done:
		return gen.EventDone
	case jobs.Failed:
		return gen.EventFailed
	case jobs.Canceled:
		return gen.EventCanceled
	}
	return gen.EventStatus
}

// eventData is an event's data: the job's status, or for a done job its result's URL, or for a failed
// one the problem that says why.
func (s *Server) eventData(ev jobs.Event) ([]byte, error) {
	st, err := s.toJobStatus(ev.Job)
	if err != nil {
		return nil, err
	}
	var v any = st
	switch eventKind(ev.Job) {
	case gen.EventDone:
		v = gen.JobDoneEvent{Id: st.Id, Result: resultPath(ev.Job.ID)}
	case gen.EventFailed:
		if st.Error != nil {
			v = st.Error
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	// One data line: JSON has no raw newlines, but say so rather than trust it.
	return bytes.ReplaceAll(b, []byte("\n"), []byte(`\n`)), nil
}
