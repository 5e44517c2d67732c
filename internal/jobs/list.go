package jobs

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/reportd/reportd/internal/problem"
	"github.com/reportd/reportd/internal/store"
)

// List page bounds: a page holds up to limit jobs and reads at most maxScanFactor times that many from
// the client's index, so that a status filter that matches little still answers at a bounded cost.
const (
	DefaultListLimit = 20
	maxScanFactor    = 3
)

// ListQuery asks for a page of a client's jobs.
type ListQuery struct {
	Client string
	// Status, if set, keeps only the jobs in that state.
	Status *State
	// Cursor, if set, is the Next of the page before.
	Cursor string
	// Limit is the most jobs on the page; zero means DefaultListLimit.
	Limit int
}

// Page is a page of jobs, newest first.
type Page struct {
	Jobs []Job
	// Next is the cursor of the next page; empty on the last.
	Next string
}

// List lists a client's jobs, newest first, a page at a time. Jobs met that have expired drop out of
// the client's index.
func (s *Service) List(ctx context.Context, q ListQuery) (Page, error) {
	limit := q.Limit
	if limit == 0 {
		limit = DefaultListLimit
	}
	var after store.IndexedJob
	if q.Cursor != "" {
		var ok bool
		if after, ok = decodeCursor(q.Cursor); !ok {
			return Page{}, problem.Errorf(problem.KindInvalid, "Query parameter \"cursor\" is not a cursor this service gave out; start again without it.")
		}
	}
	page := Page{Jobs: make([]Job, 0, limit)}
	var gone []string
	scanned, exhausted := 0, false
	for len(page.Jobs) < limit && scanned < limit*maxScanFactor {
		want := min(limit*maxScanFactor-scanned, 100)
		batch, err := s.store.ListJobs(ctx, q.Client, after, want)
		if err != nil {
			return Page{}, problem.Unavailable(err)
		}
		read := 0
		for _, e := range batch {
			read++
			scanned++
			after = e
			j, err := s.Get(ctx, q.Client, e.ID)
			if isGoneOrUnknown(err) {
				gone = append(gone, e.ID)
				continue
			}
			if err != nil {
				return Page{}, err
			}
			if q.Status != nil && j.State != *q.Status {
				continue
			}
			page.Jobs = append(page.Jobs, j)
			if len(page.Jobs) == limit {
				break
			}
		}
		if len(batch) < want {
			// The index has nothing older: the page is the last if all of the batch was read.
			exhausted = read == len(batch)
			break
		}
	}
	if len(gone) > 0 {
		// Expired jobs drop out of the index as they are met; a failure here only delays that.
		if err := s.store.Unindex(ctx, q.Client, gone...); err != nil {
			s.log.WarnContext(ctx, "expired jobs not dropped from the list", "err", err)
		}
	}
	if !exhausted && after.Score > 0 {
		page.Next = encodeCursor(after)
	}
	return page, nil
}

// encodeCursor makes a page position (the last entry read) opaque: clients must not build cursors,
// only pass them back.
func encodeCursor(e store.IndexedJob) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v2:" + strconv.FormatInt(e.Score, 10) + ":" + e.ID))
}

func decodeCursor(c string) (store.IndexedJob, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return store.IndexedJob{}, false
	}
	rest, ok := strings.CutPrefix(string(b), "v2:")
	score, id, ok2 := strings.Cut(rest, ":")
	n, err := strconv.ParseInt(score, 10, 64)
	if !ok || !ok2 || err != nil || n <= 0 || len(id) > 64 {
		return store.IndexedJob{}, false
	}
	return store.IndexedJob{Score: n, ID: id}, true
}
