package impl

import (
	"fmt"

	"github.com/google/uuid"
)

func parseID(s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.UUID{}, fmt.Errorf("job id %q: %w", s, err)
	}
	return id, nil
}
