package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckJSON(t *testing.T) {
	t.Parallel()
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	nestObj := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	tests := []struct {
		name, body string
		refused    string // what the error must say; "" means accepted
	}{
		{name: "object", body: `{"range":"2026-Q1"}`},
		{name: "whitespace-around", body: " \n\t{\"range\":\"2026-Q1\"}\r\n "},
		{name: "scalar", body: `42`},
		{name: "string", body: `"x"`},
		{name: "empty-object", body: `{}`},
		{name: "empty-array", body: `[]`},
		{name: "same-key-in-sibling-objects", body: `[{"a":1},{"a":2}]`},
		{name: "same-key-at-two-depths", body: `{"a":{"a":1}}`},
		{name: "key-named-like-a-delimiter", body: `{"}":1,"{":2,"]":[{"}":3}]}`},
		{name: "keys-differing-in-case", body: `{"a":1,"A":2}`},
		{name: "unicode", body: `{"range":"2026-Q1","note":"héllo ☃ 𝄞"}`},
		{name: "depth-32-arrays", body: nest(32)},
		{name: "depth-32-objects", body: nestObj(32)},
		{name: "nested-after-closing", body: `[` + nest(31) + `,` + nest(31) + `]`},

		{name: "empty", body: ``, refused: "empty"},
		{name: "blank", body: "  \n ", refused: "empty"},
		{name: "duplicate-key", body: `{"range":"2026-Q1","range":"2026-Q2"}`, refused: "twice"},
		{name: "duplicate-key-escaped", body: `{"range":"2026-Q1","r\u0061nge":"2026-Q2"}`, refused: "twice"},
		{name: "duplicate-key-nested", body: `{"a":{"b":1,"b":2}}`, refused: "twice"},
		{name: "duplicate-key-after-nested", body: `{"a":{"b":1},"c":[1,{"d":2}],"a":3}`, refused: "twice"},
		{name: "duplicate-empty-key", body: `{"":1,"":2}`, refused: "twice"},
		{name: "depth-33-arrays", body: nest(33), refused: "deeper"},
		{name: "depth-33-objects", body: nestObj(33), refused: "deeper"},
		{name: "depth-1000", body: nest(1000), refused: "deeper"},
		{name: "depth-100000-unclosed", body: strings.Repeat("[", 100000), refused: "deeper"},
		{name: "two-values", body: `{} {}`, refused: "more than one"},
		{name: "trailing-scalar", body: `{"range":"2026-Q1"}1`, refused: "more than one"},
		{name: "trailing-garbage", body: `{"range":"2026-Q1"}x`, refused: "not valid JSON"},
		{name: "truncated", body: `{"range":`, refused: "not valid JSON"},
		{name: "unclosed-object", body: `{`, refused: "not valid JSON"},
		{name: "unclosed-object-after-member", body: `{"range":"2026-Q1"`, refused: "not valid JSON"},
		{name: "unclosed-array", body: `[1,2`, refused: "not valid JSON"},
		{name: "unclosed-after-key", body: `{"range"`, refused: "not valid JSON"},
		{name: "unclosed-string", body: `{"range":"2026`, refused: "not valid JSON"},
		{name: "single-quotes", body: `{'range':'2026-Q1'}`, refused: "not valid JSON"},
		{name: "trailing-comma", body: `{"a":1,}`, refused: "not valid JSON"},
		{name: "nul-in-string", body: "{\"range\":\"2026-Q1\x00\"}", refused: "not valid JSON"},
		{name: "nul-outside", body: "{\"range\":\"2026-Q1\"}\x00", refused: "not valid JSON"},
		{name: "bom", body: "\ufeff{\"range\":\"2026-Q1\"}", refused: "not valid JSON"},
		{name: "invalid-utf8-in-string", body: "{\"range\":\"2026-Q1\xff\"}", refused: "UTF-8"},
		{name: "invalid-utf8-in-key", body: "{\"r\xc3\":1}", refused: "UTF-8"},
		{name: "overlong-encoding", body: "{\"a\":\"\xc0\xaf\"}", refused: "UTF-8"},
		{name: "surrogate-half-encoded", body: "{\"a\":\"\xed\xa0\x80\"}", refused: "UTF-8"},
		{name: "nan", body: `{"a":NaN}`, refused: "not valid JSON"},
		{name: "comment", body: `{"a":1 /* x */}`, refused: "not valid JSON"},
		// Where it stops being JSON: the line and column, in characters from 1, and the byte offset.
		{name: "where-truncated", body: `{"range":`, refused: "at line 1, column 10 (byte offset 9): it ends inside an object or array"},
		{name: "where-unclosed-string", body: `{"range":"2026`, refused: "at line 1, column 15 (byte offset 14): unexpected end of JSON input"},
		{name: "where-unclosed", body: `{"range":"2026-Q1"`, refused: "at line 1, column 19 (byte offset 18): it ends inside an object or array"},
		{name: "where-bad-character", body: `{"range": x}`, refused: "at line 1, column 11 (byte offset 10): invalid character 'x' looking for beginning of value"},
		{name: "where-second-line", body: "{\n  \"range\": \"2026-Q1\",\n  \"note\": \"é\" x\n}", refused: "at line 3, column 15 (byte offset 39): invalid character 'x'"},
		{name: "where-trailing-comma", body: "{\"a\":1,}", refused: "at line 1, column 8 (byte offset 7): invalid character '}'"},
		{name: "where-after-the-value", body: `{"range":"2026-Q1"}x`, refused: "at line 1, column 20 (byte offset 19): invalid character 'x' after top-level value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := checkJSON([]byte(tt.body))
			switch {
			case tt.refused == "" && err != nil:
				t.Errorf("checkJSON refused %.80q: %v", tt.body, err)
			case tt.refused != "" && err == nil:
				t.Errorf("checkJSON accepted %.80q, want it refused (%s)", tt.body, tt.refused)
			case tt.refused != "" && !strings.Contains(err.Error(), tt.refused):
				t.Errorf("checkJSON(%.80q) = %v, want an error saying %q", tt.body, err, tt.refused)
			}
		})
	}
}

func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{
		`{"range":"2026-Q1"}`, `{"range":"2026-Q1","callback_url":"https://example.com/x"}`, `{"a":1,"a":2}`,
		`{"a":{"b":[1,2,{"c":null}]},"b":true}`, `[[[[[[]]]]]]`, `{} {}`, `{"a":"\u0000"}`, "{\"a\":\"\xff\"}",
		`{"\u0061":1,"a":2}`, `1e999`, `-0`, `"\ud800"`, ``, ` `, `{"a":1,}`, `[1,[2,[3,{"x":{"y":[]}}]]]`,
		strings.Repeat("[", 40) + strings.Repeat("]", 40), strings.Repeat(`{"a":`, 33) + "1" + strings.Repeat("}", 33),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		err := checkJSON(body)
		if err != nil {
			if json.Valid(body) && utf8.Valid(body) {
				msg := err.Error()
				if !strings.Contains(msg, "twice") && !strings.Contains(msg, "deeper") {
					t.Fatalf("checkJSON refused valid JSON %q: %v", body, err)
				}
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("checkJSON accepted %q, which is not valid JSON", body)
		}
		if !utf8.Valid(body) {
			t.Fatalf("checkJSON accepted %q, which is not valid UTF-8", body)
		}
		if d, dup := depthAndDuplicates(body); d > maxJSONDepth || dup {
			t.Fatalf("checkJSON accepted %q: depth %d, duplicate members %v", body, d, dup)
		}
	})
}

// depthAndDuplicates is an independent reading of a valid JSON text: its nesting depth, and whether any
// object names a member twice, found by decoding each object into an ordered list of members.
func depthAndDuplicates(body []byte) (int, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var walk func() (int, bool)
	walk = func() (int, bool) {
		tok, err := dec.Token()
		if err != nil {
			return 0, false
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return 0, false
		}
		deepest, dup := 0, false
		seen := map[string]bool{}
		for dec.More() {
			if d == '{' {
				k, _ := dec.Token()
				key, _ := k.(string)
				dup = dup || seen[key]
				seen[key] = true
			}
			depth, inner := walk()
			deepest, dup = max(deepest, depth), dup || inner
		}
		if _, err := dec.Token(); err != nil && !errors.Is(err, io.EOF) {
			return deepest + 1, dup
		}
		return deepest + 1, dup
	}
	return walk()
}
