package main

import (
	"go/version"
	"runtime"
)

// patchedGo is the Go release that go.mod's toolchain line names: the oldest without the known
// net/http and crypto/x509 vulnerabilities that govulncheck reports for Go 1.26.8.
const patchedGo = "go1.27.3"

// oldToolchain reports whether the running binary was built with a Go older than patchedGo, as it is
// when built with GOTOOLCHAIN=local on a machine whose Go is older: go.mod's toolchain line then does
// not apply.
func oldToolchain(goVersion string) bool {
	return version.IsValid(goVersion) && version.Compare(goVersion, patchedGo) < 0
}

// builtWith is the Go release this binary was built with.
var builtWith = runtime.Version()
