package impl

import (
	"context"
	"encoding/base64"
	"net/url"
	"strconv"

	"github.com/reportd/reportd/gen"
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
	var before int64
	if c := req.Params.Cursor; c != nil {
		var ok bool
		if before, ok = decodeCursor(*c); !ok {
			return nil, errorf(KindInvalid, "query parameter \"cursor\": not a cursor this service gave out; start again without it")
		}
	}
	items := make([]gen.JobStatus, 0, limit)
	var gone []string
	scanned, exhausted := 0, false
	for len(items) < limit && scanned < limit*maxScanFactor {
		want := min(limit*maxScanFactor-scanned, 100)
		batch, err := s.store.ListJobs(ctx, client, before, want)
		if err != nil {
			return nil, unavailable(err)
		}
		read := 0
		for _, j := range batch {
			read++
			scanned++
			before = j.Score
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
	if !exhausted && before > 0 {
		q := url.Values{"cursor": {encodeCursor(before)}, "limit": {strconv.Itoa(limit)}}
		if f := req.Params.Status; f != nil {
			q.Set("status", string(*f))
		}
		next := "/v1/reports?" + q.Encode()
		out.Body.Next = &next
		out.Headers.Link = ptr("<" + next + `>; rel="next"`)
	}
	return out, nil
}

// encodeCursor makes a page position opaque: clients must not build cursors, only pass them back.
func encodeCursor(score int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + strconv.FormatInt(score, 10)))
}

func decodeCursor(c string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 4 || string(b[:3]) != "v1:" {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b[3:]), 10, 64)
	return n, err == nil && n > 0
}
