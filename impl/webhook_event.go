package impl

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/jobs"
)

// WebhookEvent is the body of the webhook that announces that job id ended in state at at: the API's
// WebhookEvent, thin, so that the report itself is fetched from its result URL. It is the lifecycle's
// jobs.Webhooks.Event: the URLs of a job are made here, in the HTTP layer, and nowhere else.
func WebhookEvent(id string, state jobs.State, at time.Time) ([]byte, error) {
	uid, err := parseID(id)
	if err != nil {
		return nil, err
	}
	var ev gen.WebhookEvent
	ev.Timestamp = at.UTC()
	ev.Data.Id, ev.Data.Status, ev.Data.Links.Status = uid, gen.JobState(state), statusPath(id)
	switch state {
	case jobs.Done:
		ev.Type = gen.ReportDone
		ev.Data.Links.Result = ptr(resultPath(id))
	case jobs.Canceled:
		ev.Type = gen.ReportCanceled
	case jobs.Failed:
		ev.Type = gen.ReportFailed
	default:
		return nil, fmt.Errorf("job %s is %s: only a job that ended is announced", id, state)
	}
	return json.Marshal(ev)
}
