package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"
	"time"

	"github.com/reportd/reportd/gen"
)

// The kinds of Event, as openapi.yaml's JobEventKind names them: any number of EventStatus, then one
// terminal event.
const (
	EventStatus   = gen.EventStatus
	EventDone     = gen.EventDone
	EventFailed   = gen.EventFailed
	EventCanceled = gen.EventCanceled
)

// Event is one event of a job's stream (GET /v1/reports/{id}/events).
type Event struct {
	// Kind is EventStatus, or the terminal EventDone, EventFailed or EventCanceled.
	Kind gen.JobEventKind
	// ID is the event's id, which a reconnect sends as Last-Event-ID.
	ID string
	// Status is the job's status, for a status or canceled event.
	Status *gen.JobStatus
	// ResultURL is the report's URL, absolute, for a done event.
	ResultURL string
	// Problem is why the job failed, for a failed event.
	Problem *gen.Problem
}

// Terminal reports whether e is the stream's last event.
func (e Event) Terminal() bool {
	return e.Kind == EventDone || e.Kind == EventFailed || e.Kind == EventCanceled
}

// maxReconnects bounds how many times in a row Events reconnects a stream that broke off.
const maxReconnects = 5

// Events follows job id as the service streams it: the status at once, every change of state or
// progress, then one terminal event, after which the sequence ends. A stream that breaks off is
// reconnected with Last-Event-ID after the delay the service asked for, a few times in a row at most. An
// answer that is no stream (404, 410, 429, ...) ends it with its *ProblemError; a service too old to
// stream answers 404 with type /problems/no-route, and the caller should poll instead.
func (c *Client) Events(ctx context.Context, id string) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		jid, err := parseID(id)
		if err != nil {
			yield(Event{}, err)
			return
		}
		// No overall timeout: a stream lasts as long as its job.
		hc := *c.http
		hc.Timeout = 0
		last, retry, failures := "", 2*time.Second, 0
		for {
			params := &gen.StreamReportEventsParams{}
			if last != "" {
				params.LastEventID = &last
			}
			req, err := gen.NewStreamReportEventsRequest(c.base.String(), jid, params)
			if err != nil {
				yield(Event{}, fmt.Errorf("client: %w", err))
				return
			}
			req = req.WithContext(ctx)
			req.Header.Set("Accept", "text/event-stream")
			_ = c.edit(ctx, req)
			resp, err := hc.Do(req)
			switch {
			case err != nil && ctx.Err() != nil:
				yield(Event{}, ctx.Err())
				return
			case err != nil:
				// Connecting failed: counts as a break.
			case resp.StatusCode == http.StatusNoContent:
				resp.Body.Close()
				return // the stream had ended already
			case resp.StatusCode != http.StatusOK:
				_, body, _ := exchange(ctx, resp, nil)
				yield(Event{}, problemFrom(resp, body, c.now()))
				return
			default:
				n, ended, wait, rerr := c.readEvents(resp, &last, yield)
				if ended {
					return
				}
				if wait > 0 {
					retry = wait
				}
				if n > 0 {
					failures = 0
				}
				err = rerr
			}
			if failures++; failures > maxReconnects {
				yield(Event{}, fmt.Errorf("client: the event stream of job %s broke off %d times: %v", id, failures-1, err))
				return
			}
			if err := c.sleep(ctx, retry); err != nil {
				yield(Event{}, err)
				return
			}
		}
	}
}

// readEvents reads one connection's events and yields them. It returns how many it read, whether the
// sequence has ended (the terminal event, or the caller stopped), the retry delay the service asked for,
// and why the connection ended otherwise. last is the id of the last event read.
func (c *Client) readEvents(resp *http.Response, last *string, yield func(Event, error) bool) (n int, ended bool, retry time.Duration, err error) {
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxBody)
	var kind, id, data string
	for sc.Scan() {
		line := sc.Text()
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			kind = value
		case "id":
			id = value
		case "data":
			data = value
		case "retry":
			var ms int
			if _, err := fmt.Sscan(value, &ms); err == nil && ms > 0 {
				retry = time.Duration(ms) * time.Millisecond
			}
		}
		if line != "" || kind == "" {
			continue
		}
		if kind == "error" { // the service's stream stopped on its side: reconnect
			kind, data = "", ""
			continue
		}
		ev, err := c.decodeEvent(resp, kind, id, data)
		kind, data = "", ""
		if err != nil {
			return n, !yield(Event{}, err), retry, err
		}
		n++
		if ev.ID != "" {
			*last = ev.ID
		}
		if !yield(ev, nil) || ev.Terminal() {
			return n, true, retry, nil
		}
	}
	if err := sc.Err(); err != nil {
		return n, false, retry, err
	}
	return n, false, retry, io.ErrUnexpectedEOF
}

// decodeEvent decodes one event's data by its kind.
func (c *Client) decodeEvent(resp *http.Response, kind, id, data string) (Event, error) {
	ev := Event{Kind: gen.JobEventKind(kind), ID: id}
	var err error
	switch ev.Kind {
	case EventStatus, EventCanceled:
		ev.Status = &gen.JobStatus{}
		err = json.Unmarshal([]byte(data), ev.Status)
	case EventDone:
		var d gen.JobDoneEvent
		if err = json.Unmarshal([]byte(data), &d); err == nil {
			ref, perr := resp.Request.URL.Parse(d.Result)
			if perr != nil || d.Result == "" {
				err = errors.Join(errors.New("no result URL"), perr)
			} else {
				ev.ResultURL = ref.String()
			}
		}
	case EventFailed:
		ev.Problem = &gen.Problem{}
		err = json.Unmarshal([]byte(data), ev.Problem)
	default:
		return Event{}, fmt.Errorf("client: the event stream of %s sent an event of kind %q: %s", resp.Request.URL, kind, data)
	}
	if err != nil {
		return Event{}, fmt.Errorf("client: a %s event of %s: %w", kind, resp.Request.URL, err)
	}
	return ev, nil
}
