package httpapi_test

import (
	"compress/gzip"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/reportd/reportd/internal/httpapi"
)

func serveDocs(t *testing.T, path string, header map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	httpapi.Docs(slog.New(slog.DiscardHandler)).ServeHTTP(rec, req)
	return rec.Result()
}

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	pageRef     = regexp.MustCompile(`(?:src|href)="([^"]*)"`)
	scriptTag   = regexp.MustCompile(`<script([^>]*)>([^<]*)</script>`)
	inlineStyle = regexp.MustCompile(`<style|\sstyle=|\son[a-z]+=`)
)

// TestDocsPage: the page loads only its own assets, by same-origin paths, with no inline script or
// style (its CSP allows none), and Swagger UI is pointed at /openapi.yaml by a script of its own.
func TestDocsPage(t *testing.T) {
	t.Parallel()
	res := serveDocs(t, "/docs", nil)
	page := readAll(t, res)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /docs = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if got := res.Header.Get("Content-Security-Policy"); got != httpapi.DocsCSP {
		t.Errorf("CSP = %q, want %q", got, httpapi.DocsCSP)
	}
	for _, want := range []string{"script-src 'self'", "style-src 'self'", "connect-src 'self'", "default-src 'none'"} {
		if !strings.Contains(httpapi.DocsCSP, want) {
			t.Errorf("CSP %q lacks %s", httpapi.DocsCSP, want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "http:", "https:", "*"} {
		if strings.Contains(httpapi.DocsCSP, bad) {
			t.Errorf("CSP %q allows %s", httpapi.DocsCSP, bad)
		}
	}
	for _, m := range scriptTag.FindAllStringSubmatch(page, -1) {
		if !strings.Contains(m[1], "src=") || strings.TrimSpace(m[2]) != "" {
			t.Errorf("the page has an inline script: %s", m[0])
		}
	}
	if m := inlineStyle.FindString(page); m != "" {
		t.Errorf("the page has an inline style or handler: %q", m)
	}
	refs := pageRef.FindAllStringSubmatch(page, -1)
	var assets []string
	for _, m := range refs {
		ref := m[1]
		switch {
		case ref == "/openapi.yaml":
		case strings.HasPrefix(ref, httpapi.DocsPath+"/"):
			assets = append(assets, ref)
		default:
			t.Errorf("the page refers to %s, outside /docs/ and /openapi.yaml", ref)
		}
	}
	for _, want := range []string{"/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/reportd.js"} {
		if !strings.Contains(strings.Join(assets, " "), want) {
			t.Errorf("the page does not load %s; it loads %v", want, assets)
		}
	}
	for _, path := range assets {
		res := serveDocs(t, path, nil)
		body := readAll(t, res)
		if res.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s = %d, %d bytes", path, res.StatusCode, len(body))
		}
		if got := res.Header.Get("Content-Security-Policy"); got != httpapi.DocsCSP {
			t.Errorf("GET %s: CSP = %q", path, got)
		}
		wantType := map[string]string{".js": "application/javascript", ".css": "text/css", ".png": "image/png"}[path[strings.LastIndex(path, "."):]]
		if ct := res.Header.Get("Content-Type"); wantType == "" || !strings.HasPrefix(ct, wantType) {
			t.Errorf("GET %s: Content-Type %q, want %q", path, ct, wantType)
		}
	}
	if js := readAll(t, serveDocs(t, "/docs/reportd.js", nil)); !strings.Contains(js, `url: "/openapi.yaml"`) || !strings.Contains(js, "SwaggerUIBundle(") {
		t.Errorf("reportd.js does not point Swagger UI at /openapi.yaml:\n%s", js)
	}
}

// TestDocsAssets: Swagger UI's bundle is served compressed to a client that accepts gzip and plain to
// one that does not; an unknown asset is the no-route problem; the index has one address.
func TestDocsAssets(t *testing.T) {
	t.Parallel()
	gz := serveDocs(t, "/docs/swagger-ui-bundle.js", map[string]string{"Accept-Encoding": "gzip"})
	if gz.StatusCode != http.StatusOK || gz.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("GET the bundle with gzip = %d, Content-Encoding %q", gz.StatusCode, gz.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(gz.Body)
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	plain := serveDocs(t, "/docs/swagger-ui-bundle.js", nil)
	body := readAll(t, plain)
	if plain.Header.Get("Content-Encoding") != "" || body != string(unzipped) || !strings.Contains(body, "SwaggerUIBundle") {
		t.Errorf("the plain bundle (%d bytes, Content-Encoding %q) is not the gzipped one unzipped (%d bytes)",
			len(body), plain.Header.Get("Content-Encoding"), len(unzipped))
	}

	missing := serveDocs(t, "/docs/nothing.js", nil)
	if missing.StatusCode != http.StatusNotFound || missing.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET /docs/nothing.js = %d %s, want a 404 problem", missing.StatusCode, missing.Header.Get("Content-Type"))
	}
	for _, path := range []string{"/docs/", "/docs/index.html"} {
		res := serveDocs(t, path, nil)
		if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/docs" {
			t.Errorf("GET %s = %d Location %q, want 301 to /docs", path, res.StatusCode, res.Header.Get("Location"))
		}
	}
}

// TestDocsCSPDocumented: docs/api.md quotes the policy the page is served with.
func TestDocsCSPDocumented(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	if doc := strings.Join(strings.Fields(string(b)), " "); !strings.Contains(doc, "Content-Security-Policy: "+httpapi.DocsCSP+"`") {
		t.Errorf("docs/api.md does not quote the policy of /docs, Content-Security-Policy: %s", httpapi.DocsCSP)
	}
}
