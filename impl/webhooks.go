package impl

import (
	"context"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/tasks"
)

// GetReportWebhook answers with the delivery state of a job's webhook.
func (s *Server) GetReportWebhook(ctx context.Context, req gen.GetReportWebhookRequestObject) (gen.GetReportWebhookResponseObject, error) {
	v, err := s.job(ctx, req.Id.String())
	if err != nil {
		return nil, err
	}
	if v.callback == "" || s.webhooks == nil {
		return nil, errorf(KindNotFound, "job %s was submitted without a callback_url, so it has no webhook", v.id)
	}
	if v, err = s.withDelivery(ctx, v); err != nil {
		return nil, err
	}
	d := toWebhookDelivery(v)
	return gen.GetReportWebhook200JSONResponse{Body: *d, Headers: gen.GetReportWebhook200ResponseHeaders{CacheControl: ptr("no-store")}}, nil
}

// withDelivery reads the state of a finished job's webhook into v. Only jobs with a callback pay the
// extra lookup, and only once they are finished (before that nothing was sent).
func (s *Server) withDelivery(ctx context.Context, v jobView) (jobView, error) {
	if v.callback == "" || s.webhooks == nil || s.webhooks.Deliveries == nil {
		return v, nil
	}
	v.delivery = &tasks.Delivery{}
	if !v.terminal() {
		return v, nil
	}
	d, ok, err := s.webhooks.Deliveries.WebhookDelivery(ctx, v.id)
	if err != nil {
		return v, unavailable(err)
	}
	if ok {
		v.delivery = &d
	}
	return v, nil
}

// toWebhookDelivery converts a job's webhook state to the API's WebhookDelivery.
func toWebhookDelivery(v jobView) *gen.WebhookDelivery {
	d := v.delivery
	if d == nil {
		return nil
	}
	out := &gen.WebhookDelivery{Url: v.callback, Attempts: d.Attempts}
	if d.LastStatus != 0 {
		out.LastStatus = ptr(d.LastStatus)
	}
	if d.LastError != "" {
		out.LastError = ptr(d.LastError)
	}
	if !d.DeliveredAt.IsZero() {
		out.DeliveredAt = ptr(d.DeliveredAt.UTC())
	}
	return out
}
