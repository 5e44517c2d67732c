package httpapi

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// DocsHandler serves a readable API reference rendered from the spec: one self-contained page, no
// script and nothing fetched from elsewhere, so it works offline and behind any firewall.
func DocsHandler(spec *openapi3.T) (http.Handler, error) {
	page, err := renderDocs(spec)
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		_, _ = w.Write(page)
	}), nil
}

type docOp struct {
	Method, Path, ID, Summary string
	Description               template.HTML
	Params                    []docField
	Body                      string
	Responses                 []docResponse
	Callbacks                 []string
}

type docResponse struct {
	Status      string
	Description template.HTML
	Headers     []docField
	Media       []string
}

type docField struct {
	Name, In, Type string
	Required       bool
	Description    template.HTML
}

type docSchema struct {
	Name        string
	Description template.HTML
	Fields      []docField
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// prose renders a description's light markdown: paragraphs and `code`.
func prose(s string) template.HTML {
	var b strings.Builder
	for _, para := range strings.Split(strings.TrimSpace(s), "\n\n") {
		if para == "" {
			continue
		}
		esc := template.HTMLEscapeString(strings.Join(strings.Fields(para), " "))
		b.WriteString("<p>" + codeSpan.ReplaceAllString(esc, "<code>$1</code>") + "</p>")
	}
	return template.HTML(b.String()) //nolint:gosec // escaped above
}

func typeOf(ref *openapi3.SchemaRef) string {
	if ref == nil || ref.Value == nil {
		return ""
	}
	if ref.Ref != "" {
		return ref.Ref[strings.LastIndex(ref.Ref, "/")+1:]
	}
	v := ref.Value
	switch {
	case v.Type != nil && v.Type.Is("array"):
		return "array of " + typeOf(v.Items)
	case len(v.AllOf) > 0:
		var parts []string
		for _, a := range v.AllOf {
			parts = append(parts, typeOf(a))
		}
		return strings.Join(parts, " + ")
	case v.Type != nil:
		t := strings.Join(v.Type.Slice(), "|")
		if v.Format != "" {
			t += " (" + v.Format + ")"
		}
		if len(v.Enum) > 0 {
			var e []string
			for _, x := range v.Enum {
				e = append(e, fmt.Sprint(x))
			}
			t += ": " + strings.Join(e, ", ")
		}
		return t
	}
	return "object"
}

func fieldsOf(s *openapi3.Schema) []docField {
	var out []docField
	required := map[string]bool{}
	for _, r := range s.Required {
		required[r] = true
	}
	names := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := s.Properties[n]
		out = append(out, docField{Name: n, Type: typeOf(p), Required: required[n], Description: prose(p.Value.Description)})
	}
	for _, a := range s.AllOf {
		if a.Value != nil {
			out = append(out, fieldsOf(a.Value)...)
		}
	}
	return out
}

func renderDocs(spec *openapi3.T) ([]byte, error) {
	var ops []docOp
	paths := spec.Paths.InMatchingOrder()
	sort.Strings(paths)
	for _, path := range paths {
		item := spec.Paths.Value(path)
		for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			op := item.GetOperation(method)
			if op == nil {
				continue
			}
			d := docOp{Method: method, Path: path, ID: op.OperationID, Summary: op.Summary, Description: prose(op.Description)}
			for _, p := range append(item.Parameters, op.Parameters...) {
				if p.Value != nil {
					d.Params = append(d.Params, docField{Name: p.Value.Name, In: p.Value.In, Type: typeOf(p.Value.Schema),
						Required: p.Value.Required, Description: prose(p.Value.Description)})
				}
			}
			if rb := op.RequestBody; rb != nil && rb.Value != nil {
				for mt, c := range rb.Value.Content {
					d.Body += mt + ": " + typeOf(c.Schema) + " "
				}
			}
			codes := op.Responses.Map()
			keys := make([]string, 0, len(codes))
			for k := range codes {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, code := range keys {
				r := codes[code].Value
				if r == nil {
					continue
				}
				dr := docResponse{Status: code, Description: prose(*r.Description)}
				for name, h := range r.Headers {
					if h.Value != nil {
						dr.Headers = append(dr.Headers, docField{Name: name, Type: typeOf(h.Value.Schema), Required: h.Value.Required, Description: prose(h.Value.Description)})
					}
				}
				sort.Slice(dr.Headers, func(i, j int) bool { return dr.Headers[i].Name < dr.Headers[j].Name })
				for mt, c := range r.Content {
					dr.Media = append(dr.Media, mt+": "+typeOf(c.Schema))
				}
				sort.Strings(dr.Media)
				d.Responses = append(d.Responses, dr)
			}
			for name := range op.Callbacks {
				d.Callbacks = append(d.Callbacks, name)
			}
			ops = append(ops, d)
		}
	}
	var schemas []docSchema
	names := make([]string, 0, len(spec.Components.Schemas))
	for n := range spec.Components.Schemas {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := spec.Components.Schemas[n].Value
		ds := docSchema{Name: n, Description: prose(s.Description), Fields: fieldsOf(s)}
		if len(ds.Fields) == 0 {
			ds.Fields = []docField{{Name: "(value)", Type: typeOf(spec.Components.Schemas[n])}}
		}
		schemas = append(schemas, ds)
	}
	var buf bytes.Buffer
	err := docsPage.Execute(&buf, map[string]any{
		"Title": spec.Info.Title, "Version": spec.Info.Version, "Description": prose(spec.Info.Description),
		"Ops": ops, "Schemas": schemas,
	})
	return buf.Bytes(), err
}

var docsPage = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} {{.Version}} API reference</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1b1f24;background:#fff}
header{background:#1b1f24;color:#fff;padding:1.2em 2em}header a{color:#9cd}
main{max-width:70em;margin:0 auto;padding:1em 2em}
nav ul{list-style:none;padding:0;columns:2}nav li{margin:.15em 0}
h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
.op{border:1px solid #ddd;border-radius:6px;margin:1.2em 0;padding:.2em 1em 1em}
.m{display:inline-block;min-width:4.5em;font-weight:700;color:#fff;border-radius:4px;padding:0 .4em;text-align:center}
.GET{background:#2b7bb9}.POST{background:#3a8f3a}.DELETE{background:#b93a2b}.PUT,.PATCH{background:#a06b00}
code{background:#f2f4f6;padding:0 .25em;border-radius:3px;font-size:.92em}
table{border-collapse:collapse;width:100%;margin:.4em 0}td,th{border-bottom:1px solid #eee;text-align:left;padding:.3em .5em;vertical-align:top}
th{font-weight:600;color:#555}.req{color:#b93a2b;font-size:.85em}td p{margin:0}
</style></head><body>
<header><h1>{{.Title}} <small>{{.Version}}</small></h1>
<p>API reference, rendered from <a href="/openapi.yaml">/openapi.yaml</a>, the contract clients are generated from.</p></header>
<main>{{.Description}}
<nav><h2>Operations</h2><ul>{{range .Ops}}<li><a href="#{{.ID}}"><span class="m {{.Method}}">{{.Method}}</span> <code>{{.Path}}</code></a> {{.Summary}}</li>{{end}}<li><a href="#beside-the-api">Beside the API</a>: health, readiness, metrics, the asynq web UI, problem types</li></ul></nav>
{{range .Ops}}<section class="op" id="{{.ID}}"><h3><span class="m {{.Method}}">{{.Method}}</span> <code>{{.Path}}</code> — {{.Summary}}</h3>
{{.Description}}
{{if .Params}}<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th>description</th></tr>
{{range .Params}}<tr><td><code>{{.Name}}</code>{{if .Required}} <span class="req">required</span>{{end}}</td><td>{{.In}}</td><td>{{.Type}}</td><td>{{.Description}}</td></tr>{{end}}</table>{{end}}
{{if .Body}}<h4>Request body</h4><p><code>{{.Body}}</code></p>{{end}}
<h4>Responses</h4><table><tr><th>status</th><th>description</th><th>headers and body</th></tr>
{{range .Responses}}<tr><td><b>{{.Status}}</b></td><td>{{.Description}}</td><td>{{range .Headers}}<code>{{.Name}}</code>{{if .Required}} <span class="req">always</span>{{end}}: {{.Type}}<br>{{end}}{{range .Media}}<code>{{.}}</code><br>{{end}}</td></tr>{{end}}</table>
{{if .Callbacks}}<h4>Callbacks</h4><p>{{range .Callbacks}}<code>{{.}}</code> {{end}}: see <code>WebhookEvent</code> below.</p>{{end}}
</section>{{end}}
<h2 id="beside-the-api">Beside the API</h2>
<p>Served by every API process beside the operations above, and not part of the contract (no client is generated for them):</p>
<table><tr><th>request</th><th>answers</th></tr>
<tr><td><code>GET /healthz</code></td><td>200 while the process runs.</td></tr>
<tr><td><code>GET /readyz</code></td><td>200 when Redis answers and a worker serves the report queue; 503 with <code>Retry-After</code> and the reason otherwise.</td></tr>
<tr><td><code>GET /metrics</code></td><td>Prometheus metrics; needs the admin token (<code>REPORTD_ADMIN_TOKEN</code>) as a Bearer token or as the basic-auth password.</td></tr>
<tr><td><code>GET /monitoring/</code></td><td>the asynq web UI over the queues; needs the admin token.</td></tr>
<tr><td><code>GET /problems/{slug}</code></td><td>what a problem's <code>type</code> means.</td></tr>
<tr><td><code>GET /openapi.yaml</code></td><td>the contract, byte for byte.</td></tr>
<tr><td><code>GET /docs</code></td><td>this page.</td></tr></table>
<p>A worker alone serves <code>/healthz</code>, <code>/readyz</code> and <code>/metrics</code> on <code>REPORTD_OPS_ADDR</code>.</p>
<h2>Schemas</h2>
{{range .Schemas}}<section class="op" id="schema-{{.Name}}"><h3>{{.Name}}</h3>{{.Description}}
<table><tr><th>field</th><th>type</th><th>description</th></tr>{{range .Fields}}<tr><td><code>{{.Name}}</code>{{if .Required}} <span class="req">required</span>{{end}}</td><td>{{.Type}}</td><td>{{.Description}}</td></tr>{{end}}</table></section>{{end}}
</main></body></html>
`))
