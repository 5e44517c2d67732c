// Package gen holds the code generated from openapi.yaml by oapi-codegen: the models, the chi server
// with its strict-server interface, the embedded spec and the Go client. Never edit it by hand; change
// openapi.yaml and run go generate ./...
package gen

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen --config=oapi-codegen.yaml ../openapi.yaml
