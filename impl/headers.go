package impl

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/jobs"
)

// maxWait is the longest a request may be held by Prefer: wait.
const maxWait = 60 * time.Second

// preferWait returns the wait a Prefer header asks for (RFC 7240: "wait=N", N delta-seconds), capped at
// maxWait, or nil for none. Preferences are hints: a malformed or absent one is ignored, never an
// error.
func preferWait(header *string) *time.Duration {
	if header == nil {
		return nil
	}
	for _, pref := range strings.Split(*header, ",") {
		tok, _, _ := strings.Cut(pref, ";")
		name, val, ok := strings.Cut(strings.TrimSpace(tok), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "wait") {
			continue
		}
		val = strings.Trim(strings.TrimSpace(val), `"`)
		n, err := strconv.ParseUint(val, 10, 64)
		if errors.Is(err, strconv.ErrRange) {
			return ptr(maxWait) // a number too large for any clock still asks for the longest wait
		}
		if err != nil {
			return nil
		}
		if n > uint64(maxWait/time.Second) {
			return ptr(maxWait)
		}
		return ptr(time.Duration(n) * time.Second)
	}
	return nil
}

// preferenceApplied is the Preference-Applied value when j's read honoured a wait.
func preferenceApplied(j jobs.Job, wait *time.Duration) *string {
	if !j.Waited || wait == nil {
		return nil
	}
	return ptr("wait=" + strconv.Itoa(int(*wait/time.Second)))
}

// idempotentReplayed is the Idempotent-Replayed header of a submission's answer: "true" for a replay.
func idempotentReplayed(j jobs.Job) *string {
	if !j.Replayed {
		return nil
	}
	return ptr("true")
}

// fingerprint identifies a submission's content, so that a key replayed with another body is caught.
// It hashes the decoded request re-encoded, so whitespace and member order do not matter.
func fingerprint(body *gen.ReportRequest) string {
	b, _ := json.Marshal(body)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// etagOf is the strong ETag of one representation of a stored report.
func etagOf(stored []byte, media string) string {
	sum := sha256.Sum256(stored)
	kind := "json"
	if media == mediaCSV {
		kind = "csv"
	}
	return `"` + hex.EncodeToString(sum[:16]) + "-" + kind + `"`
}

// noneMatch reports whether an If-None-Match header matches etag, with the weak comparison RFC 9110
// prescribes for it: "*" matches, and W/ prefixes are ignored.
func noneMatch(header *string, etag string) bool {
	if header == nil {
		return false
	}
	for _, tag := range strings.Split(*header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == "*" || tag == etag {
			return true
		}
	}
	return false
}

// httpDate formats t as an HTTP-date (RFC 9110), for Expires.
func httpDate(t time.Time) *string {
	return ptr(t.UTC().Format(http.TimeFormat))
}
