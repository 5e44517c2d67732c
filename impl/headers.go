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
)

// maxWait is the longest a request may be held by Prefer: wait.
const maxWait = 60 * time.Second

// preferWait returns the wait a Prefer header asks for (RFC 7240: "wait=N", N delta-seconds), capped at
// maxWait. Preferences are hints: a malformed or absent one is ignored, never an error.
func preferWait(header *string) (time.Duration, bool) {
	if header == nil {
		return 0, false
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
			return maxWait, true // a number too large for any clock still asks for the longest wait
		}
		if err != nil {
			return 0, false
		}
		if n > uint64(maxWait/time.Second) {
			return maxWait, true
		}
		return time.Duration(n) * time.Second, true
	}
	return 0, false
}

// preferenceApplied is the Preference-Applied value for an honoured wait.
func preferenceApplied(wait time.Duration) *string {
	return ptr("wait=" + strconv.Itoa(int(wait/time.Second)))
}

// idempotencyKey checks an Idempotency-Key header: 1 to 255 printable ASCII characters, sent as a token
// or as a Structured Field string ("..."), which the IETF draft specifies and some clients send.
func idempotencyKey(raw string) (string, bool) {
	k := raw
	if strings.HasPrefix(k, `"`) || strings.HasSuffix(k, `"`) {
		if len(k) < 2 || k[0] != '"' || k[len(k)-1] != '"' {
			return "", false // a quoted string that does not end (or begin) with its quote
		}
		k = k[1 : len(k)-1]
		if strings.ContainsAny(k, `"\`) {
			return "", false
		}
	}
	if len(k) < 1 || len(k) > 255 {
		return "", false
	}
	for i := range len(k) {
		if k[i] < 0x20 || k[i] > 0x7e {
			return "", false
		}
	}
	return k, true
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
