package impl

import (
	"context"
	"strings"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/problem"
)

// GetProblemType describes the problem type a problem's type URI names, so that the URI in every
// problem leads somewhere a person can read; an unknown slug is a 404 problem.
func (s *Server) GetProblemType(_ context.Context, req gen.GetProblemTypeRequestObject) (gen.GetProblemTypeResponseObject, error) {
	text, ok := problem.Describe(req.Slug)
	if !ok {
		return nil, problem.Errorf(problem.KindNoRoute, "Problem type %q does not exist; the types are listed in /openapi.yaml.", req.Slug)
	}
	return gen.GetProblemType200TextplainCharsetUtf8Response{Body: strings.NewReader(text), ContentLength: int64(len(text))}, nil
}
