package impl

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"
)

func parseID(s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.UUID{}, fmt.Errorf("job id %q: %w", s, err)
	}
	return id, nil
}

func parseDate(s string) (openapi_types.Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return openapi_types.Date{}, fmt.Errorf("date %q: %w", s, err)
	}
	return openapi_types.Date{Time: t}, nil
}
