//go:build tools

// Package tools pins the versions of the tools the build runs (the code generator and the linter), so
// that go.mod records them and `go run` uses exactly those.
package tools

import (
	_ "github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen"
	_ "honnef.co/go/tools/cmd/staticcheck"
)
