package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// maxJSONDepth bounds how deeply a request body may nest; reportd's requests are flat objects.
const maxJSONDepth = 32

// checkJSON accepts a body only if it is exactly one JSON value, valid UTF-8, nested at most
// maxJSONDepth deep, with no object naming a member twice. Decoders disagree on duplicate members
// (Go's keeps the last, others the first), so a body that has them means different things to
// different readers, and is refused.
func checkJSON(body []byte) error {
	if !utf8.Valid(body) {
		return errors.New("the body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		object  bool
		keys    map[string]bool
		wantKey bool
	}
	var stack []frame
	values := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return notJSON(body)
		}
		if len(stack) == 0 {
			values++
			if values > 1 {
				return errors.New("the body holds more than one JSON value")
			}
		}
		top := len(stack) - 1
		if top >= 0 && stack[top].object && stack[top].wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:top]
				continue
			}
			key, _ := tok.(string)
			if stack[top].keys[key] {
				return fmt.Errorf("the body names member %q twice in one object", key)
			}
			stack[top].keys[key] = true
			stack[top].wantKey = false
			continue
		}
		if top >= 0 && stack[top].object {
			stack[top].wantKey = true // this token is a member's value (or starts it)
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{object: true, keys: map[string]bool{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > maxJSONDepth {
			return fmt.Errorf("the body nests deeper than %d levels", maxJSONDepth)
		}
	}
	if values == 0 {
		return errors.New("the body is empty")
	}
	if len(stack) > 0 {
		line, col := lineColumn(body, len(body))
		return fmt.Errorf("the body is not valid JSON at line %d, column %d (byte offset %d): it ends inside an object or array", line, col, len(body))
	}
	return nil
}

// notJSON says where body, which the decoder refused, stops being JSON: the line and column (counted
// in characters, from 1) and the byte offset (from 0) of the first character that cannot be there, or
// of the end when the body ends too soon. The offset is json.Unmarshal's, which counts from the start
// of the body (the decoder's own may count from the start of the value it was reading).
func notJSON(body []byte) error {
	var se *json.SyntaxError
	if err := json.Unmarshal(body, new(json.RawMessage)); !errors.As(err, &se) {
		return errors.New("the body is not valid JSON")
	}
	// Offset is the number of bytes read when the error was found: the offending character is the last
	// of them, unless the input ran out.
	at := int(se.Offset)
	if at > 0 && at <= len(body) && strings.HasPrefix(se.Error(), "invalid character") {
		at--
	}
	line, col := lineColumn(body, at)
	return fmt.Errorf("the body is not valid JSON at line %d, column %d (byte offset %d): %s", line, col, at, se)
}

// lineColumn is where byte offset at of body is, as a line and a column in characters, both from 1.
func lineColumn(body []byte, at int) (line, col int) {
	before := body[:min(at, len(body))]
	start := bytes.LastIndexByte(before, '\n') + 1
	return bytes.Count(before, []byte{'\n'}) + 1, utf8.RuneCount(before[start:]) + 1
}
