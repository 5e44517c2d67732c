package reportd_test

import (
	"context"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/reportd/reportd"
)

// TestSpecExamplesValid: every example in openapi.yaml (the request bodies "Try it out" on /docs starts
// from, the parameters', the schemas') is valid against its schema; kin-openapi's Validate checks them.
func TestSpecExamplesValid(t *testing.T) {
	t.Parallel()
	spec, err := openapi3.NewLoader().LoadFromData(reportd.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
}
