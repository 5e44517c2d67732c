// Package reportd holds reportd's contract, openapi.yaml, embedded byte for byte so that the service
// can serve exactly the file its clients are generated from. The code lives in gen/, impl/, tasks/,
// internal/ and cmd/.
package reportd

import _ "embed"

// OpenAPI is openapi.yaml as committed.
//
//go:embed openapi.yaml
var OpenAPI []byte
