package main

import "runtime/debug"

// reportdVersion is reportd's version as its build recorded it (buildVersion), the service.version of its
// spans and the version of its starting line.
var reportdVersion = buildVersion(debug.ReadBuildInfo())

// buildVersion is the main module's version when the build knew one (a tagged release, or the
// pseudo-version the go command makes of a commit), else the commit it was built from (with +dirty when
// the tree had changes), else Go's "(devel)" (a build with -buildvcs=false), or "unknown" for a binary
// with no build information.
func buildVersion(bi *debug.BuildInfo, ok bool) string {
	if !ok || bi == nil {
		return "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "(devel)"
	}
	if dirty {
		rev += "+dirty"
	}
	return rev
}
