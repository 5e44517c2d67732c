package impl_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/google/uuid"
)

// TestContractCheckerCatchesViolations proves the harness's checker is not vacuous: responses that break
// the contract in the ways the suite relies on it to notice are refused.
func TestContractCheckerCatchesViolations(t *testing.T) {
	t.Parallel()
	c := mustContract(t)
	id := uuid.NewString()
	status := func(s string) string {
		return `{"id":"` + id + `","status":"` + s + `","progress":0,"range":{"from":"2026-01-01","to":"2026-03-31"},` +
			`"created_at":"2026-01-01T00:00:00Z","links":{"self":"/v1/reports/` + id + `"}}`
	}
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	problem := func(status int) string {
		return `{"type":"/problems/x","title":"X","status":` + strconv.Itoa(status) + `,"detail":"d"}`
	}
	cases := []struct {
		name   string
		method string
		path   string
		status int
		header http.Header
		body   string
		ok     bool
	}{
		{"ok-303", "GET", "/v1/reports/" + id, 303, hdr("Location", "/v1/reports/"+id+"/result", "Cache-Control", "no-store"), "", true},
		{"ok-200-pending", "GET", "/v1/reports/" + id, 200, hdr("Content-Type", appJSON, "Retry-After", "1", "Cache-Control", "no-store"), status("pending"), true},
		{"ok-404-route", "GET", "/nope", 404, hdr("Content-Type", problemJSON), problem(404), true},
		{"303-without-location", "GET", "/v1/reports/" + id, 303, hdr("Cache-Control", "no-store"), "", false},
		{"303-elsewhere", "GET", "/v1/reports/" + id, 303, hdr("Location", "/elsewhere", "Cache-Control", "no-store"), "", false},
		{"200-retry-after-not-integer", "GET", "/v1/reports/" + id, 200, hdr("Content-Type", appJSON, "Retry-After", "soon", "Cache-Control", "no-store"), status("pending"), false},
		{"200-pending-without-retry-after", "GET", "/v1/reports/" + id, 200, hdr("Content-Type", appJSON, "Cache-Control", "no-store"), status("pending"), false},
		{"200-unknown-state", "GET", "/v1/reports/" + id, 200, hdr("Content-Type", appJSON, "Retry-After", "1", "Cache-Control", "no-store"), status("finished"), false},
		{"200-without-no-store", "GET", "/v1/reports/" + id, 200, hdr("Content-Type", appJSON, "Retry-After", "1"), status("pending"), false},
		{"202-without-retry-after", "POST", "/v1/reports", 202, hdr("Content-Type", appJSON, "Location", "/v1/reports/"+id), status("pending"), false},
		{"404-problem-without-detail", "GET", "/v1/reports/" + id, 404, hdr("Content-Type", problemJSON), `{"type":"/problems/x","title":"X","status":404}`, false},
		{"404-problem-wrong-status", "GET", "/v1/reports/" + id, 404, hdr("Content-Type", problemJSON), problem(400), false},
		{"404-route-plain-text", "GET", "/nope", 404, hdr("Content-Type", "text/plain"), "404 page not found", false},
		{"405-without-allow", "DELETE", "/v1/reports", 405, hdr("Content-Type", problemJSON), problem(405), false},
		{"503-without-retry-after", "GET", "/v1/reports/" + id, 503, hdr("Content-Type", problemJSON), problem(503), false},
		{"200-outside-contract", "GET", "/nope", 200, hdr("Content-Type", "text/plain"), "hi", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(tc.method, "http://127.0.0.1:1"+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = c.checkExchange(req, tc.status, tc.header, []byte(tc.body))
			if tc.ok && err != nil {
				t.Errorf("a conforming response was refused: %v", err)
			}
			if !tc.ok && err == nil {
				t.Errorf("a response that breaks the contract passed")
			}
		})
	}
}
