package console

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestIsTerminal: a buffer and a plain file are not terminals.
func TestIsTerminal(t *testing.T) {
	t.Parallel()
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(&bytes.Buffer{}) || IsTerminal(f) {
		t.Error("IsTerminal of a buffer or a plain file = true, want false")
	}
}
