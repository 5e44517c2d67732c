// Package console tells the commands whether they write to a person: a terminal gets text that may
// redraw itself, anything else gets lines for programs.
package console

import (
	"io"
	"os"
)

// IsTerminal reports whether w is a terminal: an *os.File on a character device.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
