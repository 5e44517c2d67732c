package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// The CORS headers of an allowed origin: what a browser app may send, and what it may read.
const (
	corsMethods = "GET, HEAD, POST, DELETE"
	corsHeaders = "Authorization, Content-Type, Idempotency-Key, Prefer, If-None-Match, X-Request-Id"
	corsExposed = "Location, Retry-After, ETag, Expires, Cache-Control, Preference-Applied, Idempotent-Replayed, " +
		"X-Request-Id, Content-Disposition, Link, WWW-Authenticate"
	corsMaxAge = "600"
)

// ParseOrigins reads REPORTD_CORS_ORIGINS: "*", or origins (scheme://host[:port]) separated by commas.
func ParseOrigins(s string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(s, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if o != "*" {
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
				return nil, fmt.Errorf("%q is not an origin: want scheme://host[:port], or *", o)
			}
		}
		out = append(out, o)
	}
	return out, nil
}

// CORS lets browser apps on origins (or on any, for "*") call the API: it answers their preflight
// requests, and tells them which answers' headers they may read. A request from any other origin gets
// no CORS header, so a browser keeps its answer from the app; requests without an Origin are
// untouched. No origins means no CORS at all.
func CORS(origins []string) func(http.Handler) http.Handler {
	anyOrigin := slices.Contains(origins, "*")
	return func(next http.Handler) http.Handler {
		if len(origins) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			if origin == "" || !anyOrigin && !slices.Contains(origins, origin) {
				next.ServeHTTP(w, r)
				return
			}
			h := w.Header()
			h.Add("Vary", "Origin")
			if anyOrigin {
				h.Set("Access-Control-Allow-Origin", "*")
			} else {
				h.Set("Access-Control-Allow-Origin", origin)
			}
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", corsMethods)
				h.Set("Access-Control-Allow-Headers", corsHeaders)
				h.Set("Access-Control-Max-Age", corsMaxAge)
				w.WriteHeader(http.StatusNoContent)
				return
			}
			h.Set("Access-Control-Expose-Headers", corsExposed)
			next.ServeHTTP(w, r)
		})
	}
}
