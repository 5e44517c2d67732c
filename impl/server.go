// Package impl is reportd's HTTP port: the strict handlers that satisfy the interface generated from
// openapi.yaml. Each converts the request, makes one call to the job lifecycle (internal/jobs), and
// converts the answer back, or returns the lifecycle's error for the one problem table to render.
package impl

import (
	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/jobs"
)

var _ gen.StrictServerInterface = (*Server)(nil)

// Server implements gen.StrictServerInterface on the job lifecycle.
type Server struct {
	jobs *jobs.Service
}

// New returns a Server on the lifecycle j.
func New(j *jobs.Service) *Server { return &Server{jobs: j} }
