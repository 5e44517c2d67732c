package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestCORS(t *testing.T) {
	t.Parallel()
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusMethodNotAllowed) // as the router answers OPTIONS
			return
		}
		w.Header().Set("Location", "/v1/reports/x")
		w.WriteHeader(http.StatusAccepted)
	})
	const app = "https://app.example"
	for _, tc := range []struct {
		name            string
		origins         []string
		method, origin  string
		preflight       bool
		wantStatus      int
		wantAllowOrigin string
		wantExpose      bool
	}{
		{name: "preflight-allowed", origins: []string{app}, method: http.MethodOptions, origin: app, preflight: true, wantStatus: http.StatusNoContent, wantAllowOrigin: app},
		{name: "preflight-any", origins: []string{"*"}, method: http.MethodOptions, origin: app, preflight: true, wantStatus: http.StatusNoContent, wantAllowOrigin: "*"},
		{name: "preflight-other-origin", origins: []string{app}, method: http.MethodOptions, origin: "https://evil.example", preflight: true, wantStatus: http.StatusMethodNotAllowed},
		{name: "preflight-no-cors", method: http.MethodOptions, origin: app, preflight: true, wantStatus: http.StatusMethodNotAllowed},
		{name: "post-allowed", origins: []string{app}, method: http.MethodPost, origin: app, wantStatus: http.StatusAccepted, wantAllowOrigin: app, wantExpose: true},
		{name: "post-other-origin", origins: []string{app}, method: http.MethodPost, origin: "https://evil.example", wantStatus: http.StatusAccepted},
		{name: "post-no-origin", origins: []string{app}, method: http.MethodPost, wantStatus: http.StatusAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(tc.method, "/v1/reports", nil)
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.preflight {
				req.Header.Set("Access-Control-Request-Method", http.MethodPost)
				req.Header.Set("Access-Control-Request-Headers", "authorization, idempotency-key")
			}
			rec := httptest.NewRecorder()
			CORS(tc.origins)(api).ServeHTTP(rec, req)
			h := rec.Header()
			if rec.Code != tc.wantStatus || h.Get("Access-Control-Allow-Origin") != tc.wantAllowOrigin {
				t.Errorf("answer %d, Access-Control-Allow-Origin %q; want %d, %q", rec.Code, h.Get("Access-Control-Allow-Origin"), tc.wantStatus, tc.wantAllowOrigin)
			}
			if tc.preflight && tc.wantStatus == http.StatusNoContent &&
				(h.Get("Access-Control-Allow-Methods") != corsMethods || h.Get("Access-Control-Allow-Headers") != corsHeaders) {
				t.Errorf("preflight answer headers: %v", h)
			}
			if got := h.Get("Access-Control-Expose-Headers") != ""; got != tc.wantExpose {
				t.Errorf("Access-Control-Expose-Headers set: %v, want %v", got, tc.wantExpose)
			}
		})
	}
}

func TestParseOrigins(t *testing.T) {
	t.Parallel()
	got, err := ParseOrigins(" https://app.example , http://localhost:5173,")
	if err != nil || len(got) != 2 || got[0] != "https://app.example" || got[1] != "http://localhost:5173" {
		t.Errorf("ParseOrigins = %v, %v", got, err)
	}
	for _, bad := range []string{"app.example", "https://app.example/path", "ftp://x", "https://user@app.example"} {
		if _, err := ParseOrigins(bad); err == nil {
			t.Errorf("ParseOrigins(%q) accepted it", bad)
		}
	}
}
