package httpapi

import (
	"context"
	"testing"
)

func TestAcceptContext(t *testing.T) {
	t.Parallel()
	if got := Accept(context.Background()); got != "" {
		t.Errorf("Accept(no Accept) = %q, want empty", got)
	}
	if got := Accept(WithAccept(context.Background(), "text/csv")); got != "text/csv" {
		t.Errorf("Accept(WithAccept(text/csv)) = %q", got)
	}
}
