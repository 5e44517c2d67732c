package client

import (
	"context"

	"github.com/reportd/reportd/gen"
)

// ListOptions narrow a List.
type ListOptions struct {
	// Status, if set, keeps only the jobs in that state.
	Status gen.JobState
	// Limit is the most jobs on the page (1 to 100); zero means the service's default (20).
	Limit int
	// Cursor is the Next of the page before; empty for the newest jobs.
	Cursor string
}

// Page is a page of the caller's jobs, newest first.
type Page struct {
	Jobs []gen.JobStatus
	// Next is the cursor of the next page (ListOptions.Cursor), empty on the last.
	Next string
}

// List reads a page of the caller's jobs, newest first.
func (c *Client) List(ctx context.Context, opts ListOptions) (*Page, error) {
	params := &gen.ListReportsParams{}
	if opts.Status != "" {
		params.Status = &opts.Status
	}
	if opts.Limit != 0 {
		params.Limit = &opts.Limit
	}
	if opts.Cursor != "" {
		params.Cursor = &opts.Cursor
	}
	resp, err := c.api.ListReports(ctx, params)
	_, list, err := readOK[gen.JobList](ctx, c, resp, err)
	if err != nil {
		return nil, err
	}
	p := &Page{Jobs: list.Items}
	if list.Next != nil {
		if u, err := c.base.Parse(*list.Next); err == nil {
			p.Next = u.Query().Get("cursor")
		}
	}
	return p, nil
}
