package main

import "testing"

func TestOldToolchain(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]bool{
		"go1.26.8": true, "go1.27.2": true, "go1.27rc1": true, "go1.27.3": false, "go1.27.10": false,
		"go1.28": false, "go1.28.1": false, "devel +abc": false, "": false,
	} {
		if got := oldToolchain(v); got != want {
			t.Errorf("oldToolchain(%q) = %v, want %v", v, got, want)
		}
	}
	// The tests run on the toolchain go.mod names (the README's and CI's GOTOOLCHAIN).
	if oldToolchain(builtWith) {
		t.Logf("these tests run on %s, older than %s: reportd warns at start", builtWith, patchedGo)
	}
}
