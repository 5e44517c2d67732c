package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/go-chi/chi/v5"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/problem"
)

// MaxBodyBytes is the largest request body the API reads.
const MaxBodyBytes = 64 << 10

// New returns the HTTP handler of the API: every request to an operation of the embedded openapi.yaml
// is authenticated as the operation asks (the problem-type descriptions, /problems/{slug}, ask for no
// key), then validated against it, before it reaches the strict server api; every failure, on any path,
// is a problem+json. extra routes (health, monitoring) are mounted beside the API by the caller.
func New(api gen.StrictServerInterface, keys []APIKey, log *slog.Logger, extra func(chi.Router)) (http.Handler, error) {
	spec, err := gen.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("load embedded spec: %w", err)
	}
	// The validator checks the Host against the spec's servers, refusing valid requests on any other
	// address; the service is reachable under whatever name its operator gives it.
	spec.Servers = nil
	specRouter, err := gorillamux.NewRouter(spec)
	if err != nil {
		return nil, fmt.Errorf("route the embedded spec: %w", err)
	}

	fail := func(w http.ResponseWriter, r *http.Request, err error) { problem.Write(w, r, log, err) }

	r := chi.NewRouter()
	r.Use(recoverProblems(log), headAsGet, joinPrefer)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		fail(w, r, problem.Errorf(problem.KindNoRoute, "Nothing is served at %s.", r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		allowed := allowedMethods(r, req.URL.Path)
		if len(allowed) == 0 { // chi calls an unknown method "not allowed" even where nothing is served
			fail(w, req, problem.Errorf(problem.KindNoRoute, "Nothing is served at %s.", req.URL.Path))
			return
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		fail(w, req, problem.Errorf(problem.KindMethodNotAllowed, "Method %s is not allowed on %s; the allowed methods are %s.", req.Method, req.URL.Path, strings.Join(allowed, ", ")))
	})
	strict := gen.NewStrictHandlerWithOptions(api, []gen.StrictMiddlewareFunc{carryAccept}, gen.StrictHTTPServerOptions{
		RequestErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			fail(w, r, &problem.Error{Kind: problem.KindInvalid, Detail: "The request body cannot be decoded.", Err: err})
		},
		ResponseErrorHandlerFunc: fail,
	})
	r.Group(func(g chi.Router) {
		g.Use(validate(specRouter, keys, log))
		gen.HandlerWithOptions(strict, gen.ChiServerOptions{
			BaseRouter: g,
			ErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
				fail(w, r, &problem.Error{Kind: problem.KindInvalid, Detail: err.Error(), Err: err})
			},
		})
	})
	if extra != nil {
		extra(r)
	}
	return r, nil
}

// carryAccept hands the Accept header to the strict handlers through their context: OpenAPI cannot
// declare Accept as a parameter (it ignores header parameters of that name), and the strict interface
// passes nothing else of the request.
func carryAccept(f gen.StrictHandlerFunc, _ string) gen.StrictHandlerFunc {
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request, req any) (any, error) {
		return f(WithAccept(ctx, r.Header.Get("Accept")), w, r, req)
	}
}

type acceptKey struct{}

// WithAccept returns ctx carrying a request's Accept header for the strict handler it calls.
func WithAccept(ctx context.Context, accept string) context.Context {
	return context.WithValue(ctx, acceptKey{}, accept)
}

// Accept is the Accept header of the request a strict handler serves.
func Accept(ctx context.Context) string {
	s, _ := ctx.Value(acceptKey{}).(string)
	return s
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

// recoverProblems turns a panic in a handler into a logged 500 problem instead of a dropped connection.
func recoverProblems(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					problem.Write(w, r, log, fmt.Errorf("panic: %v", v))
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}
