// Package client is the Go client of reportd: it submits report jobs, follows them to their reports,
// and turns the API's answers into values and typed errors.
//
// It wraps the client that oapi-codegen generates from openapi.yaml (package gen) and adds what
// generation cannot:
//
//   - A status read sees the 303 See Other instead of following it. Go's http.Client follows a 303 by
//     default and would hand the report's JSON to a status decoder, which accepts it without an error;
//     every Client therefore refuses redirects (http.ErrUseLastResponse) and reads the 303 as "done".
//   - Wait polls a job to its end, honouring Retry-After as delay-seconds or as an HTTP-date, and asks
//     the server to hold each read (Prefer: wait=N) no longer than the caller's deadline allows.
//   - Errors the API answers with are *ProblemError values carrying the RFC 9457 problem; a job that
//     failed or was canceled ends Wait with a *JobError carrying its status and its problem.
//
// The generated parsers are not used for answers that carry Retry-After: they bind it as an integer and
// fail the whole answer on an HTTP-date, which RFC 9110 allows. This package reads those answers itself.
package client
