package impl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/go-chi/chi/v5"
	nethttpmiddleware "github.com/oapi-codegen/nethttp-middleware"

	"github.com/reportd/reportd/gen"
)

// MaxBodyBytes is the largest request body the API reads.
const MaxBodyBytes = 64 << 10

// Handler returns the HTTP handler of the API: every /v1 request is validated against the embedded
// openapi.yaml before it reaches s, and every failure, on any path, is a problem+json. extra routes
// (health, monitoring) are mounted beside the API by the caller.
func Handler(s *Server, log *slog.Logger, extra func(chi.Router)) (http.Handler, error) {
	spec, err := gen.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("load embedded spec: %w", err)
	}
	// The validator checks the Host against the spec's servers, refusing valid requests on any other
	// address; the service is reachable under whatever name its operator gives it.
	spec.Servers = nil

	fail := func(w http.ResponseWriter, r *http.Request, err error) { writeProblem(w, r, log, err) }

	r := chi.NewRouter()
	r.Use(recoverProblems(log), headAsGet, joinPrefer)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		fail(w, r, errorf(KindNoRoute, "nothing is served at %s", r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		allowed := allowedMethods(r, req.URL.Path)
		if len(allowed) == 0 { // chi calls an unknown method "not allowed" even where nothing is served
			fail(w, req, errorf(KindNoRoute, "nothing is served at %s", req.URL.Path))
			return
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		fail(w, req, errorf(KindMethodNotAllowed, "%s is not allowed on %s; allowed: %s", req.Method, req.URL.Path, strings.Join(allowed, ", ")))
	})
	r.Get("/problems/{slug}", func(w http.ResponseWriter, req *http.Request) {
		if !serveProblemType(w, req, chi.URLParam(req, "slug")) {
			fail(w, req, errorf(KindNoRoute, "there is no problem type %q", chi.URLParam(req, "slug")))
		}
	})

	strict := gen.NewStrictHandlerWithOptions(s, []gen.StrictMiddlewareFunc{carryAccept}, gen.StrictHTTPServerOptions{
		RequestErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			fail(w, r, &Error{Kind: KindInvalid, Detail: "the request body cannot be decoded", Err: err})
		},
		ResponseErrorHandlerFunc: fail,
	})
	// API keys are checked by the spec's security scheme, through the validator's hook.
	auth := authenticate(s.keys)
	specRouter, err := gorillamux.NewRouter(spec)
	if err != nil {
		return nil, fmt.Errorf("route the embedded spec: %w", err)
	}
	r.Group(func(api chi.Router) {
		api.Use(carryCaller, readBody(log, authFirst(specRouter, auth)))
		api.Use(nethttpmiddleware.OapiRequestValidatorWithOptions(spec, &nethttpmiddleware.Options{
			ErrorHandlerWithOpts: func(_ context.Context, err error, w http.ResponseWriter, r *http.Request, _ nethttpmiddleware.ErrorHandlerOpts) {
				fail(w, r, validationError(err))
			},
			Options: openapi3filter.Options{MultiError: false, AuthenticationFunc: auth},
		}))
		gen.HandlerWithOptions(strict, gen.ChiServerOptions{
			BaseRouter: api,
			ErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
				fail(w, r, &Error{Kind: KindInvalid, Detail: err.Error(), Err: err})
			},
		})
	})
	if extra != nil {
		extra(r)
	}
	return r, nil
}

// carryCaller puts an empty caller in the request's context for the authentication hook to fill.
func carryCaller(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, _ := withCaller(r.Context())
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// carryAccept hands the Accept header to the strict handlers through their context.
func carryAccept(f gen.StrictHandlerFunc, _ string) gen.StrictHandlerFunc {
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request, req any) (any, error) {
		return f(withAccept(ctx, r.Header.Get("Accept")), w, r, req)
	}
}

// authFirst checks, the way the validator will, the security requirements of the operation a request
// is routed to, before its body is read: a sender without a key is refused with 401 whatever its body
// (too large, endless, not one JSON value), learns no more of the API than that it wants a key, and
// holds no connection open by trickling a body. Requests routed nowhere pass; the validator answers
// them.
func authFirst(router routers.Router, auth openapi3filter.AuthenticationFunc) func(*http.Request) error {
	opts := &openapi3filter.Options{AuthenticationFunc: auth}
	return func(r *http.Request) error {
		route, params, err := router.FindRoute(r)
		if err != nil {
			return nil
		}
		security := route.Operation.Security
		if security == nil {
			security = &route.Spec.Security
		}
		// The validator reads the body for authentication hooks that want it; this one reads only
		// headers, and the body is not to be read before the sender is known.
		r = r.Clone(r.Context())
		r.Body, r.ContentLength = http.NoBody, 0
		in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts}
		return openapi3filter.ValidateSecurityRequirements(r.Context(), in, *security)
	}
}

// readBody reads a request body of at most MaxBodyBytes into memory, refusing a larger one with 413 (at
// once when Content-Length says so), and a JSON body that is not exactly one JSON value with 400: the
// validator and the strict handler both decode only the first value and would ignore trailing data.
// A sender that authFirst refuses gets its 401 before any of it.
func readBody(log *slog.Logger, authFirst func(*http.Request) error) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// A request without a body (every GET, most DELETEs) has nothing to read: the validator
			// checks its key first of all, and it needs no second look at the route here.
			if r.Body == nil || r.Body == http.NoBody {
				next.ServeHTTP(w, r)
				return
			}
			// Refused before the body is read: the connection is closed after the answer, for net/http
			// would otherwise read what is left of the body first, which may never come.
			if err := authFirst(r); err != nil {
				w.Header().Set("Connection", "close")
				writeProblem(w, r, log, validationError(err))
				return
			}
			if r.ContentLength > MaxBodyBytes {
				w.Header().Set("Connection", "close")
				writeProblem(w, r, log, errorf(KindTooLarge, "the body is %d bytes; the limit is %d", r.ContentLength, MaxBodyBytes))
				return
			}
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
			var tooLarge *http.MaxBytesError
			switch {
			case errors.As(err, &tooLarge):
				writeProblem(w, r, log, errorf(KindTooLarge, "the body is over the limit of %d bytes", MaxBodyBytes))
				return
			case err != nil:
				writeProblem(w, r, log, &Error{Kind: KindInvalid, Detail: "the body could not be read", Err: err})
				return
			}
			if isJSON(r.Header.Get("Content-Type")) && len(body) > 0 {
				if err := checkJSON(body); err != nil {
					writeProblem(w, r, log, &Error{Kind: KindInvalid, Detail: err.Error(), Err: err})
					return
				}
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			next.ServeHTTP(w, r)
		})
	}
}

// isJSON reports whether a Content-Type names JSON, so that the body is worth checking as such.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// joinPrefer folds several Prefer header lines into one, as RFC 7240 allows a client to send them; the
// generated parameter binding would refuse more than one line.
func joinPrefer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if vs := r.Header.Values("Prefer"); len(vs) > 1 {
			r.Header.Set("Prefer", strings.Join(vs, ", "))
		}
		next.ServeHTTP(w, r)
	})
}

// headAsGet serves HEAD like GET, as RFC 9110 requires of a general-purpose server; net/http drops
// the body of a response to HEAD.
func headAsGet(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			r = r.Clone(r.Context())
			r.Method = http.MethodGet
		}
		next.ServeHTTP(w, r)
	})
}

// pointerToken escapes one JSON pointer reference token (RFC 6901): "~" as "~0", "/" as "~1".
func pointerToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// allowedMethods lists the methods router serves at path, for a 405's Allow header.
func allowedMethods(router chi.Routes, path string) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		// HEAD is served wherever GET is (headAsGet), without a route of its own.
		if router.Match(chi.NewRouteContext(), m, path) || m == http.MethodHead && router.Match(chi.NewRouteContext(), http.MethodGet, path) {
			out = append(out, m)
		}
	}
	return out
}

var unsupportedProperty = regexp.MustCompile(`^property "(.*)" is unsupported$`)

// validationError turns a validator failure into the problem the client sees, naming the offending
// field by its JSON pointer.
func validationError(err error) *Error {
	var maxBytes *http.MaxBytesError
	if errors.As(err, &maxBytes) {
		return &Error{Kind: KindTooLarge, Detail: fmt.Sprintf("the body is over the limit of %d bytes", maxBytes.Limit), Err: err}
	}
	if errors.Is(err, routers.ErrMethodNotAllowed) {
		return &Error{Kind: KindMethodNotAllowed, Detail: "this method is not allowed here", Err: err}
	}
	var secErr *openapi3filter.SecurityRequirementsError
	if errors.As(err, &secErr) {
		return &Error{Kind: KindUnauthorized, Detail: "send a valid API key as Authorization: Bearer <key>", Err: err}
	}
	if errors.Is(err, routers.ErrPathNotFound) {
		return &Error{Kind: KindNoRoute, Detail: "nothing is served at this path", Err: err}
	}
	var reqErr *openapi3filter.RequestError
	if !errors.As(err, &reqErr) {
		return &Error{Kind: KindInvalid, Detail: err.Error(), Err: err}
	}
	if reqErr.RequestBody != nil && strings.HasPrefix(reqErr.Reason, "header Content-Type has unexpected value") {
		return &Error{Kind: KindUnsupportedMediaType, Detail: fmt.Sprintf("the body is %q; send application/json", contentTypeOf(reqErr)), Err: err}
	}
	if p := reqErr.Parameter; p != nil {
		return &Error{Kind: KindInvalid, Detail: fmt.Sprintf("%s parameter %q: %s", p.In, p.Name, reasonOf(reqErr)), Err: err}
	}
	var schemaErr *openapi3.SchemaError
	if errors.As(err, &schemaErr) {
		var ptr strings.Builder
		for _, tok := range schemaErr.JSONPointer() {
			ptr.WriteString("/" + pointerToken(tok))
		}
		if m := unsupportedProperty.FindStringSubmatch(schemaErr.Reason); m != nil {
			ptr.WriteString("/" + pointerToken(m[1]))
		}
		where := ptr.String()
		if where == "" {
			where = "the body"
		}
		return &Error{Kind: KindInvalid, Detail: fmt.Sprintf("%s: %s", where, schemaErr.Reason), Err: err}
	}
	if errors.Is(err, openapi3filter.ErrInvalidRequired) {
		return &Error{Kind: KindInvalid, Detail: "the body is missing; send a JSON object", Err: err}
	}
	return &Error{Kind: KindInvalid, Detail: "the body is not valid JSON", Err: err}
}

func contentTypeOf(e *openapi3filter.RequestError) string {
	if e.Input != nil && e.Input.Request != nil {
		return e.Input.Request.Header.Get("Content-Type")
	}
	return ""
}

// reasonOf is a parameter error's reason without the validator's wrapping.
func reasonOf(e *openapi3filter.RequestError) string {
	var schemaErr *openapi3.SchemaError
	if errors.As(e.Err, &schemaErr) {
		return schemaErr.Reason
	}
	if e.Err != nil {
		return e.Err.Error()
	}
	return e.Reason
}

// recoverProblems turns a panic in a handler into a logged 500 problem instead of a dropped connection.
func recoverProblems(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					writeProblem(w, r, log, fmt.Errorf("panic: %v", v))
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}
