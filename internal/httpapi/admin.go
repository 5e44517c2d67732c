package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"

	"github.com/reportd/reportd/internal/problem"
)

// AdminOnly guards operator pages (the asynq web UI, metrics): the request must carry token as
// "Authorization: Bearer <token>" (for Prometheus and scripts) or as the password of HTTP basic auth
// with any user name (so that a browser can log in). The comparison is constant-time, on hashes, so
// neither the token's content nor its length leaks through timing.
func AdminOnly(token string, log *slog.Logger) func(http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if got, ok := adminCredential(r); ok {
				sum := sha256.Sum256([]byte(got))
				if subtle.ConstantTimeCompare(sum[:], want[:]) == 1 {
					next.ServeHTTP(w, r)
					return
				}
			}
			w.Header().Add("WWW-Authenticate", `Basic realm="reportd admin", charset="UTF-8"`)
			w.Header().Add("WWW-Authenticate", `Bearer realm="reportd admin"`)
			problem.Write(w, r, log, problem.Errorf(problem.KindUnauthorized, "This page needs the admin token (REPORTD_ADMIN_TOKEN); send it as a Bearer token or as the basic-auth password."))
		})
	}
}

// adminCredential is the token a request presents, by either scheme.
func adminCredential(r *http.Request) (string, bool) {
	if _, pass, ok := r.BasicAuth(); ok {
		return pass, true
	}
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if ok && strings.EqualFold(scheme, "Bearer") && tok != "" {
		return strings.TrimSpace(tok), true
	}
	return "", false
}
