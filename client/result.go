package client

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/reportd/reportd/gen"
)

// Result reads the report of job id, which must be done (a *ProblemError of status 409 says it is not
// yet; 404 and 410 that there is no such job, or no more).
func (c *Client) Result(ctx context.Context, id string) (*gen.Report, error) {
	if _, err := parseID(id); err != nil {
		return nil, err
	}
	res, err := c.report(ctx, c.StatusURL(id)+"/result")
	if err != nil {
		return nil, err
	}
	return res.Report, nil
}

// ResultJSON writes job id's report to w as the service sent it: its JSON, byte for byte, keys in the
// service's order. Result decodes the same answer.
func (c *Client) ResultJSON(ctx context.Context, id string, w io.Writer) error {
	if _, err := parseID(id); err != nil {
		return err
	}
	res, err := c.report(ctx, c.StatusURL(id)+"/result")
	if err != nil {
		return err
	}
	_, err = w.Write(res.JSON)
	return err
}

// ResultCSV writes the daily table of job id's report to w as CSV (a header line
// "date,orders,units,revenue_cents", then a line a day), as the service renders it.
func (c *Client) ResultCSV(ctx context.Context, id string, w io.Writer) error {
	jid, err := parseID(id)
	if err != nil {
		return err
	}
	resp, err := c.api.GetReportResult(ctx, jid, nil, accept("text/csv"))
	if err != nil {
		_, _, err = exchange(ctx, nil, err)
		return err
	}
	if resp.StatusCode != http.StatusOK {
		resp, body, err := exchange(ctx, resp, nil)
		if err != nil {
			return err
		}
		return problemFrom(resp, body, c.now())
	}
	defer resp.Body.Close()
	if media, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); media != "text/csv" {
		return fmt.Errorf("client: %s %s answered %q, want text/csv", resp.Request.Method, resp.Request.URL, resp.Header.Get("Content-Type"))
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("client: copy CSV of job %s: %w", id, err)
	}
	return nil
}
