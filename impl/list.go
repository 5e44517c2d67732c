package impl

import (
	"context"
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/tasks"
)

// List page bounds: a page holds up to limit jobs and reads at most maxScanFactor times that many from
// the client's index, so that a status filter that matches little still answers at a bounded cost.
const (
	defaultListLimit = 20
	maxScanFactor    = 3
)

// ListReports lists the caller's jobs, newest first, a page at a time.
func (s *Server) ListReports(ctx context.Context, req gen.ListReportsRequestObject) (gen.ListReportsResponseObject, error) {
	client := clientFrom(ctx)
	limit := defaultListLimit
	if req.Params.Limit != nil {
		limit = *req.Params.Limit
	}
	var after tasks.IndexedJob
	if c := req.Params.Cursor; c != nil {
		var ok bool
		if after, ok = decodeCursor(*c); !ok {
			return nil, errorf(KindInvalid, "query parameter \"cursor\": not a cursor this service gave out; start again without it")
		}
	}
	items := make([]gen.JobStatus, 0, limit)
	var gone []string
	scanned, exhausted := 0, false
	for len(items) < limit && scanned < limit*maxScanFactor {
		want := min(limit*maxScanFactor-scanned, 100)
		batch, err := s.store.ListJobs(ctx, client, after, want)
		if err != nil {
			return nil, unavailable(err)
		}
		read := 0
		for _, j := range batch {
			read++
			scanned++
			after = j
			v, err := s.job(ctx, j.ID)
			if isGoneOrUnknown(err) {
				gone = append(gone, j.ID)
				continue
			}
			if err != nil {
				return nil, err
			}
			if f := req.Params.Status; f != nil && v.state != *f {
				continue
			}
			st, err := toJobStatus(v, s.policy.JobTimeout)
			if err != nil {
				return nil, err
			}
			items = append(items, st)
			if len(items) == limit {
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
		if err := s.store.Unindex(ctx, client, gone...); err != nil {
			s.log.WarnContext(ctx, "expired jobs not dropped from the list", "err", err)
		}
	}
	out := gen.ListReports200JSONResponse{Body: gen.JobList{Items: items}, Headers: gen.ListReports200ResponseHeaders{CacheControl: ptr("no-store")}}
	if !exhausted && after.Score > 0 {
		q := url.Values{"cursor": {encodeCursor(after)}, "limit": {strconv.Itoa(limit)}}
		if f := req.Params.Status; f != nil {
			q.Set("status", string(*f))
		}
		next := "/v1/reports?" + q.Encode()
		out.Body.Next = &next
		out.Headers.Link = ptr("<" + next + `>; rel="next"`)
	}
	return out, nil
}

// encodeCursor makes a page position (the last entry read) opaque: clients must not build cursors,
// only pass them back.
func encodeCursor(j tasks.IndexedJob) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v2:" + strconv.FormatInt(j.Score, 10) + ":" + j.ID))
}

func decodeCursor(c string) (tasks.IndexedJob, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return tasks.IndexedJob{}, false
	}
	rest, ok := strings.CutPrefix(string(b), "v2:")
	score, id, ok2 := strings.Cut(rest, ":")
	n, err := strconv.ParseInt(score, 10, 64)
	if !ok || !ok2 || err != nil || n <= 0 || len(id) > 64 {
		return tasks.IndexedJob{}, false
	}
	return tasks.IndexedJob{Score: n, ID: id}, true
}
