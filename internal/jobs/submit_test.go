package jobs

import (
	"strings"
	"testing"
)

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("k", 255)
	tests := []struct {
		name, raw string
		want      string
		ok        bool
	}{
		{name: "plain", raw: "abc", want: "abc", ok: true},
		{name: "quoted-equals-plain", raw: `"abc"`, want: "abc", ok: true},
		{name: "uuid", raw: "8e03978e-40d5-43e8-bc93-6894a57f9324", want: "8e03978e-40d5-43e8-bc93-6894a57f9324", ok: true},
		{name: "one-char", raw: "x", want: "x", ok: true},
		{name: "255-chars", raw: long, want: long, ok: true},
		{name: "255-chars-quoted", raw: `"` + long + `"`, want: long, ok: true},
		{name: "printable-punctuation", raw: "a b~!#$%&'()*+,-./:;<=>?@[]^_`{|}", want: "a b~!#$%&'()*+,-./:;<=>?@[]^_`{|}", ok: true},
		{name: "empty", raw: ""},
		{name: "empty-quoted", raw: `""`},
		{name: "256-chars", raw: long + "k"},
		{name: "256-chars-quoted", raw: `"` + long + `k"`},
		{name: "control-char", raw: "ab\x01cd"},
		{name: "tab", raw: "ab\tcd"},
		{name: "newline", raw: "ab\ncd"},
		{name: "del", raw: "ab\x7fcd"},
		{name: "non-ascii", raw: "clé"},
		{name: "quote-inside-quotes", raw: `"a"b"`},
		{name: "backslash-inside-quotes", raw: `"a\b"`},
		// A key that starts a quoted string must end it: `"unterminated` is neither a token nor a string.
		{name: "unterminated-quote", raw: `"unterminated`},
		{name: "lone-quote", raw: `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := parseIdempotencyKey(tt.raw)
			if ok != tt.ok || got != tt.want {
				t.Errorf("parseIdempotencyKey(%q) = %q, %v; want %q, %v", tt.raw, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzIdempotencyKey(f *testing.F) {
	for _, s := range []string{
		"k", "order-42", `"quoted"`, `""`, `"`, `"a`, `a"`, `"a"b"`, `"a\"b"`, `"a\\b"`, "a b", " ", "~",
		"\x7f", "\x1f", "é", strings.Repeat("x", 255), strings.Repeat("x", 256), `"` + strings.Repeat("x", 255) + `"`,
		`"` + strings.Repeat("x", 256) + `"`, "a\x00b", "a\tb", "\"\"\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		key, ok := parseIdempotencyKey(raw)
		if !ok {
			if key != "" {
				t.Fatalf("parseIdempotencyKey(%q) = %q, false: a refused key must be empty", raw, key)
			}
			return
		}
		if len(key) < 1 || len(key) > 255 {
			t.Fatalf("parseIdempotencyKey(%q) = %q: %d characters, want 1 to 255", raw, key, len(key))
		}
		for i := range len(key) {
			if key[i] < 0x20 || key[i] > 0x7e {
				t.Fatalf("parseIdempotencyKey(%q) = %q: byte %#x at %d is not printable ASCII", raw, key, key[i], i)
			}
		}
		if key != raw && `"`+key+`"` != raw {
			t.Fatalf("parseIdempotencyKey(%q) = %q: neither the header nor its quoted content", raw, key)
		}
		// The plain and the quoted form of a key are one key.
		if !strings.ContainsAny(key, `"\`) {
			if again, ok := parseIdempotencyKey(`"` + key + `"`); !ok || again != key {
				t.Fatalf("idempotencyKey of %q quoted = %q, %v; want %q", key, again, ok, key)
			}
		}
	})
}
