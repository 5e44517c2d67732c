package httpapi

import (
	"embed"
	"fmt"
	"log/slog"
	"net/http"

	swaggerui "github.com/swaggest/swgui/v5/static"
	"github.com/vearutop/statigz"

	"github.com/reportd/reportd/internal/problem"
)

// DocsPath is where the API reference is served; its assets are under DocsPath + "/".
const DocsPath = "/docs"

// DocsCSP is the Content-Security-Policy of the API reference and its assets: everything the page
// loads comes from this origin (Swagger UI's script and stylesheet, reportd's configuration script, the
// spec) and so do the requests of "Try it out" (connect-src). No inline script or style, no eval. The
// data: images are the icons Swagger UI's own stylesheet embeds.
const DocsCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var (
	// docsIndex is the page: Swagger UI's bundle, then reportd.js, which points it at /openapi.yaml.
	//
	//go:embed docsui/index.html
	docsIndex []byte
	// docsAssets are reportd's own assets beside Swagger UI's: its configuration and a stylesheet.
	//
	//go:embed docsui/assets
	docsAssets embed.FS
)

// Docs serves the API reference: Swagger UI (from github.com/swaggest/swgui, whose assets are embedded
// in the binary, so nothing is fetched from elsewhere) rendering /openapi.yaml, with "Try it out"
// against this same service. Mount it at DocsPath and DocsPath + "/*". A missing asset is the usual
// no-route problem.
func Docs(log *slog.Logger) http.Handler {
	notFound := func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, r, log, problem.Errorf(problem.KindNoRoute, "nothing is served at %s", r.URL.Path))
	}
	onError := func(w http.ResponseWriter, r *http.Request, err error) {
		problem.Write(w, r, log, fmt.Errorf("serve %s: %w", r.URL.Path, err))
	}
	own := statigz.FileServer(docsAssets, statigz.FSPrefix("docsui/assets"), statigz.OnNotFound(notFound), statigz.OnError(onError))
	swagger := statigz.FileServer(swaggerui.FS, statigz.OnNotFound(notFound), statigz.OnError(onError))
	assets := http.StripPrefix(DocsPath+"/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || r.URL.Path == "index.html" {
			// statigz would serve or redirect to an index; the page has one address.
			http.Redirect(w, r, DocsPath, http.StatusMovedPermanently)
			return
		}
		if own.Found(r) {
			own.ServeHTTP(w, r)
			return
		}
		swagger.ServeHTTP(w, r)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", DocsCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		if r.URL.Path != DocsPath {
			assets.ServeHTTP(w, r)
			return
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(docsIndex)
	})
}
