package webhook

import "time"

// Event types, one per terminal status.
const (
	EventDone     = "report.done"
	EventFailed   = "report.failed"
	EventCanceled = "report.canceled"
)

// Event is the body of a webhook: thin, so that the report itself is fetched from its result URL.
type Event struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      EventData `json:"data"`
}

// EventData names the job and where to read it.
type EventData struct {
	ID     string     `json:"id"`
	Status string     `json:"status"`
	Links  EventLinks `json:"links"`
}

// EventLinks are the job's URLs, relative to the service.
type EventLinks struct {
	Status string `json:"status"`
	Result string `json:"result,omitempty"`
}

// NewEvent returns the event announcing that job id reached status ("done", "failed" or "canceled").
func NewEvent(id, status string, at time.Time) Event {
	ev := Event{Timestamp: at.UTC(), Data: EventData{ID: id, Status: status, Links: EventLinks{Status: "/v1/reports/" + id}}}
	switch status {
	case "done":
		ev.Type = EventDone
		ev.Data.Links.Result = "/v1/reports/" + id + "/result"
	case "canceled":
		ev.Type = EventCanceled
	default:
		ev.Type = EventFailed
	}
	return ev
}
