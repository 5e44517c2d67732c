package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/problem"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// validate authenticates every request routed to the API, reads and checks its body, and validates it
// against the spec, in that order, in one pass over the spec's router.
func validate(router routers.Router, keys []APIKey, log *slog.Logger) func(http.Handler) http.Handler {
	opts := &openapi3filter.Options{MultiError: false, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
		SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.WithStringFormatValidator("uri", uriFormat)}}
	auth, open := authenticate(keys), len(keys) == 0
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			route, params, err := router.FindRoute(r)
			if err != nil {
				problem.Write(w, r, log, validationError(err))
				return
			}
			// Authenticated first, from the headers alone: a sender without a key is refused with 401
			// whatever its body (too large, endless, not one JSON value), learns no more of the API than
			// that it wants a key, and holds no connection open by trickling a body.
			client, err := authorize(r, route, params, auth, open)
			if err != nil {
				if hasBody(r) {
					// net/http would otherwise read what is left of the body first, which may never come.
					w.Header().Set("Connection", "close")
				}
				problem.Write(w, r, log, validationError(err))
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), clientKey{}, client))
			if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
				span.SetName(r.Method + " " + route.Path)
				span.SetAttributes(attribute.String("http.route", route.Path), attribute.String("reportd.client", client))
				if id := params["id"]; id != "" {
					span.SetAttributes(attribute.String("reportd.job.id", id))
				}
			}
			if hasBody(r) {
				body, err := readBody(w, r)
				if err != nil {
					problem.Write(w, r, log, err)
					return
				}
				r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			}
			// The key was checked above; the validator's own security check is told to pass.
			in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, QueryParams: r.URL.Query(), Route: route, Options: opts}
			if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
				problem.Write(w, r, log, validationError(err))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// uriFormat checks the spec's format "uri" (kin-openapi checks none by default): an absolute URI, as
// JSON Schema means it, so that a malformed callback_url is a 400 like every other malformed field. Whether
// the service will call it is the lifecycle's to judge (422).
var uriFormat = openapi3.NewCallbackValidator(func(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URI")
	}
	if !u.IsAbs() {
		return errors.New("not an absolute URI")
	}
	return nil
})

// hasBody reports whether a request comes with a body to read (every GET, and most DELETEs, do not).
func hasBody(r *http.Request) bool { return r.Body != nil && r.Body != http.NoBody }

// authorize checks the security requirements of the operation r is routed to, and returns the client
// the request's key names. The spec's empty alternative (no key) holds only for an open API, one with no
// keys configured.
func authorize(r *http.Request, route *routers.Route, params map[string]string, auth func(*http.Request) (string, error), open bool) (string, error) {
	security := route.Operation.Security
	if security == nil {
		security = &route.Spec.Security
	}
	if !open {
		keyed := slices.DeleteFunc(slices.Clone(*security), func(s openapi3.SecurityRequirement) bool { return len(s) == 0 })
		security = &keyed
	}
	client := jobs.Anonymous
	hook := func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
		c, err := auth(in.RequestValidationInput.Request)
		if err == nil {
			client = c
		}
		return err
	}
	// The validator reads the body for authentication hooks that want it; this one reads only headers,
	// and the body is not to be read before the sender is known.
	hr := r.Clone(r.Context())
	hr.Body, hr.ContentLength = http.NoBody, 0
	in := &openapi3filter.RequestValidationInput{Request: hr, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: hook}}
	if err := openapi3filter.ValidateSecurityRequirements(r.Context(), in, *security); err != nil {
		return "", err
	}
	return client, nil
}

// readBody reads a request body of at most MaxBodyBytes into memory, refusing a larger one with 413 (at
// once when Content-Length says so), and a JSON body that is not exactly one JSON value with 400: the
// validator and the strict handler both decode only the first value and would ignore trailing data.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > MaxBodyBytes {
		w.Header().Set("Connection", "close")
		return nil, problem.Errorf(problem.KindTooLarge, "The body is %d bytes; the limit is %d.", r.ContentLength, MaxBodyBytes)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, problem.Errorf(problem.KindTooLarge, "The body is over the limit of %d bytes.", MaxBodyBytes)
	case err != nil:
		return nil, &problem.Error{Kind: problem.KindInvalid, Detail: "The body could not be read.", Err: err}
	}
	if isJSON(r.Header.Get("Content-Type")) && len(body) > 0 {
		if err := checkJSON(body); err != nil {
			return nil, &problem.Error{Kind: problem.KindInvalid, Detail: err.Error(), Err: err}
		}
	}
	return body, nil
}

// isJSON reports whether a Content-Type names JSON, so that the body is worth checking as such.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// pointerToken escapes one JSON pointer reference token (RFC 6901): "~" as "~0", "/" as "~1".
func pointerToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

var unsupportedProperty = regexp.MustCompile(`^property "(.*)" is unsupported$`)

// validationError turns a validator failure into the problem the client sees, naming the offending
// field by its JSON pointer.
func validationError(err error) *problem.Error {
	var maxBytes *http.MaxBytesError
	if errors.As(err, &maxBytes) {
		return &problem.Error{Kind: problem.KindTooLarge, Detail: fmt.Sprintf("The body is over the limit of %d bytes.", maxBytes.Limit), Err: err}
	}
	if errors.Is(err, routers.ErrMethodNotAllowed) {
		return &problem.Error{Kind: problem.KindMethodNotAllowed, Detail: "This method is not allowed here.", Err: err}
	}
	var secErr *openapi3filter.SecurityRequirementsError
	if errors.As(err, &secErr) {
		return &problem.Error{Kind: problem.KindUnauthorized, Detail: "The request carries no valid API key; send one as Authorization: Bearer <key>.", Err: err}
	}
	if errors.Is(err, routers.ErrPathNotFound) {
		return &problem.Error{Kind: problem.KindNoRoute, Detail: "Nothing is served at this path.", Err: err}
	}
	var reqErr *openapi3filter.RequestError
	if !errors.As(err, &reqErr) {
		return &problem.Error{Kind: problem.KindInvalid, Detail: err.Error(), Err: err}
	}
	if reqErr.RequestBody != nil && strings.HasPrefix(reqErr.Reason, "header Content-Type has unexpected value") {
		return &problem.Error{Kind: problem.KindUnsupportedMediaType, Detail: fmt.Sprintf("The body's media type is %q; send application/json.", contentTypeOf(reqErr)), Err: err}
	}
	if p := reqErr.Parameter; p != nil {
		predicate := "is refused: " + reasonOf(reqErr)
		var schemaErr *openapi3.SchemaError
		if errors.As(reqErr.Err, &schemaErr) {
			predicate = inWords(p.Name, schemaErr)
		}
		return &problem.Error{Kind: problem.KindInvalid, Detail: fmt.Sprintf("%s parameter %q %s", p.In, p.Name, predicate), Err: err}
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
		return &problem.Error{Kind: problem.KindInvalid, Detail: where + " " + inWords(where, schemaErr), Err: err}
	}
	if errors.Is(err, openapi3filter.ErrInvalidRequired) {
		return &problem.Error{Kind: problem.KindInvalid, Detail: "The body is missing; send a JSON object.", Err: err}
	}
	return &problem.Error{Kind: problem.KindInvalid, Detail: "The body is not valid JSON.", Err: err}
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

var missingProperty = regexp.MustCompile(`^property ".*" is missing$`)

// inWords says what is wrong with the value of field (a parameter's name or a body member's JSON
// pointer) for a person, as the predicate of a sentence whose subject is the field: a pattern or a
// length in the spec is for machines.
func inWords(field string, e *openapi3.SchemaError) string {
	value, _ := e.Value.(string)
	const quoted = 32
	if len(value) > quoted {
		value = value[:quoted] + "..."
	}
	switch e.SchemaField {
	case "pattern":
		switch field {
		case "/range":
			return fmt.Sprintf("%q is not a range; send a quarter (2026-Q1), a month (2026-01), a day (2026-01-15) or days (2026-01-01..2026-02-15)", value)
		case "id":
			return fmt.Sprintf("is not a job id: %q; job ids are UUIDs, such as 0f8fad5b-d9cb-469f-a165-70867728950e", value)
		case "Idempotency-Key":
			return "must be printable ASCII characters"
		}
		return fmt.Sprintf("is not of the form the API describes (see /openapi.yaml): %q", value)
	case "format":
		if e.Schema != nil && e.Schema.Format == "uri" {
			// The value is not echoed: a URL may carry credentials.
			return "is not an absolute URI; send one such as https://example.com/hooks/reportd"
		}
	case "maxLength":
		if field == "Idempotency-Key" {
			return "must be 1 to 255 characters, plain or between quotes"
		}
		if e.Schema != nil && e.Schema.MaxLength != nil {
			return fmt.Sprintf("must be at most %d characters", *e.Schema.MaxLength)
		}
	}
	switch r := e.Reason; {
	case missingProperty.MatchString(r):
		return "is missing"
	case unsupportedProperty.MatchString(r):
		return "is not a member of this request (see /openapi.yaml)"
	case strings.EqualFold(r, "value is not nullable"):
		return "must not be null"
	case strings.HasPrefix(strings.ToLower(r), "value "):
		return r[len("value "):] // "value must be a string"
	default:
		return "is refused: " + r
	}
}
