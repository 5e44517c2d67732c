package impl_test

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reportd/reportd/internal/redistest"
)

// TestResultCaching checks the result's validators and lifetime: a strong ETag per representation,
// If-None-Match answered with 304, and a max-age that runs to the job's expiry.
func TestResultCaching(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{Worker: true, Ledger: fixedLedger{}})
		id, done := h.createDone(t, "2026-01")
		expires := done.Header.Get("Expires")
		if expires == "" {
			t.Fatalf("the 303 has no Expires: %s", done)
		}
		exp, err := http.ParseTime(expires)
		if err != nil {
			t.Fatalf("the 303's Expires %q: %v", expires, err)
		}
		if until := time.Until(exp); until > h.Policy.Retention || until < h.Policy.Retention-time.Minute {
			t.Errorf("Expires is %s from now, want about the retention %s", until, h.Policy.Retention)
		}

		path := "/v1/reports/" + id + "/result"
		etagRE := regexp.MustCompile(`^"[!#-~]+"$`) // strong: no W/
		get := func(accept, inm string) *response {
			t.Helper()
			hdr := []string{"Accept", accept}
			if inm != "" {
				hdr = append(hdr, "If-None-Match", inm)
			}
			return h.doValid(t, h.request(t, http.MethodGet, path, nil, hdr...))
		}
		checkHeaders := func(what string, r *response) {
			t.Helper()
			if !etagRE.MatchString(r.Header.Get("ETag")) {
				t.Errorf("%s: ETag %q is not a strong entity tag", what, r.Header.Get("ETag"))
			}
			if r.Header.Get("Expires") != expires {
				t.Errorf("%s: Expires %q, want the 303's %q", what, r.Header.Get("Expires"), expires)
			}
			if r.Header.Get("Vary") != "Accept" {
				t.Errorf("%s: Vary %q, want Accept", what, r.Header.Get("Vary"))
			}
			cc := r.Header.Get("Cache-Control")
			secs, ok := strings.CutPrefix(cc, "private, max-age=")
			n, err := strconv.Atoi(secs)
			if !ok || err != nil {
				t.Errorf("%s: Cache-Control %q, want private, max-age=<seconds>", what, cc)
				return
			}
			if until := time.Until(exp).Seconds(); float64(n) > until+2 || float64(n) < until-2 {
				t.Errorf("%s: max-age=%d, want the %.0f s until Expires", what, n, until)
			}
		}

		jsonRes := get("application/json", "")
		if jsonRes.Status != http.StatusOK {
			t.Fatalf("result: %s", jsonRes)
		}
		checkHeaders("200 JSON", jsonRes)
		etag := jsonRes.Header.Get("ETag")
		csvRes := get("text/csv", "")
		if csvRes.Status != http.StatusOK {
			t.Fatalf("CSV result: %s", csvRes)
		}
		checkHeaders("200 CSV", csvRes)
		csvTag := csvRes.Header.Get("ETag")
		if csvTag == etag {
			t.Errorf("JSON and CSV share the ETag %s", etag)
		}
		if again := get("application/json", ""); again.Header.Get("ETag") != etag {
			t.Errorf("ETag changed between two reads: %s then %s", etag, again.Header.Get("ETag"))
		}

		for _, tc := range []struct {
			name, accept, inm string
			want              int
			wantTag           string
		}{
			{"json-304-same-etag", "application/json", etag, http.StatusNotModified, etag},
			{"json-304-weak-form", "application/json", "W/" + etag, http.StatusNotModified, etag},
			{"json-304-in-list", "application/json", `"nope", ` + etag, http.StatusNotModified, etag},
			{"json-304-star", "application/json", "*", http.StatusNotModified, etag},
			{"json-200-other-etag", "application/json", `"0123456789abcdef-json"`, http.StatusOK, etag},
			{"json-200-csv-etag", "application/json", csvTag, http.StatusOK, etag},
			{"csv-304-same-etag", "text/csv", csvTag, http.StatusNotModified, csvTag},
			{"csv-200-json-etag", "text/csv", etag, http.StatusOK, csvTag},
		} {
			r := get(tc.accept, tc.inm)
			if r.Status != tc.want || r.Header.Get("ETag") != tc.wantTag {
				t.Errorf("%s: %d with ETag %s, want %d with %s", tc.name, r.Status, r.Header.Get("ETag"), tc.want, tc.wantTag)
			}
			if r.Status == http.StatusNotModified {
				if len(r.Body) != 0 {
					t.Errorf("%s: a 304 with a body: %q", tc.name, r.Body)
				}
				checkHeaders(tc.name, r)
			}
		}
	})
}
