package httpapi

import (
	"strings"
	"testing"

	"github.com/reportd/reportd/internal/jobs"
)

func TestIdentify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, header string
		keys         []APIKey
		want         string // "" means refused with ErrBadKey
	}{
		{name: "acme", header: "Bearer acme-key-0123456789", keys: identifyKeys, want: "acme"},
		{name: "globex", header: "Bearer globex-key-0123456789", keys: identifyKeys, want: "globex"},
		{name: "longer-key-with-prefix", header: "Bearer acme-key-0123456789-and-more", keys: identifyKeys, want: "initech"},
		{name: "key-differing-in-case", header: "Bearer ACME-KEY-0123456789", keys: identifyKeys, want: "umbrella"},
		{name: "last-key", header: "Bearer ACME-KEY-0123456789", keys: identifyKeys[3:], want: "umbrella"},
		{name: "scheme-lower-case", header: "bearer acme-key-0123456789", keys: identifyKeys, want: "acme"},
		{name: "scheme-upper-case", header: "BEARER acme-key-0123456789", keys: identifyKeys, want: "acme"},
		{name: "scheme-mixed-case", header: "bEaReR globex-key-0123456789", keys: identifyKeys, want: "globex"},
		{name: "spaces-around-key", header: "Bearer   acme-key-0123456789  ", keys: identifyKeys, want: "acme"},
		{name: "wrong-key", header: "Bearer nobody-key-0123456789", keys: identifyKeys},
		{name: "key-truncated", header: "Bearer acme-key-012345678", keys: identifyKeys},
		{name: "key-extended", header: "Bearer acme-key-0123456789x", keys: identifyKeys},
		{name: "empty", header: "", keys: identifyKeys},
		{name: "only-scheme", header: "Bearer", keys: identifyKeys},
		{name: "empty-key", header: "Bearer ", keys: identifyKeys},
		{name: "blank-key", header: "Bearer    ", keys: identifyKeys},
		{name: "no-scheme", header: "acme-key-0123456789", keys: identifyKeys},
		{name: "basic", header: "Basic YWNtZTphY21lLWtleS0wMTIzNDU2Nzg5", keys: identifyKeys},
		{name: "basic-with-the-key", header: "Basic acme-key-0123456789", keys: identifyKeys},
		{name: "scheme-glued", header: "Beareracme-key-0123456789", keys: identifyKeys},
		{name: "scheme-with-colon", header: "Bearer: acme-key-0123456789", keys: identifyKeys},
		{name: "tab-separated", header: "Bearer\tacme-key-0123456789", keys: identifyKeys},
		{name: "two-keys", header: "Bearer acme-key-0123456789 globex-key-0123456789", keys: identifyKeys},
		{name: "client-name", header: "Bearer acme", keys: identifyKeys},
		{name: "no-keys-anything", header: "Bearer whatever", want: jobs.Anonymous},
		{name: "no-keys-nothing", header: "", want: jobs.Anonymous},
		{name: "no-keys-basic", header: "Basic xyz", want: jobs.Anonymous},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := identify(tt.keys, tt.header)
			switch {
			case tt.want == "" && (err != ErrBadKey || got != ""):
				t.Errorf("identify(%q) = %q, %v; want refused with ErrBadKey", tt.header, got, err)
			case tt.want != "" && (err != nil || got != tt.want):
				t.Errorf("identify(%q) = %q, %v; want %q", tt.header, got, err, tt.want)
			}
		})
	}
}

func FuzzIdentify(f *testing.F) {
	for _, s := range []string{
		"Bearer acme-key-0123456789", "bearer globex-key-0123456789", "Bearer ACME-KEY-0123456789",
		"Bearer acme-key-0123456789-and-more", "Bearer", "Bearer ", "", "Basic abc", "Bearer  x ", "\x00",
		"Bearer acme-key-0123456789\x00", "Bearer\u00a0acme-key-0123456789",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		client, err := identify(identifyKeys, header)
		if err != nil {
			if client != "" || err != ErrBadKey {
				t.Fatalf("identify(%q) = %q, %v; a refusal is \"\" and ErrBadKey", header, client, err)
			}
			return
		}
		scheme, key, _ := strings.Cut(header, " ")
		want := ""
		for _, k := range identifyKeys {
			if NewAPIKey(k.Client, strings.TrimSpace(key)) == k {
				want = k.Client
			}
		}
		if !strings.EqualFold(scheme, "bearer") || client != want {
			t.Fatalf("identify(%q) = %q, want %q", header, client, want)
		}
	})
}

// identifyKeys are the keys of TestIdentify and FuzzIdentify: one key a prefix of another's, and two
// that differ in case only, so that nothing short of the whole key matches.
var identifyKeys = []APIKey{
	NewAPIKey("acme", "acme-key-0123456789"),
	NewAPIKey("globex", "globex-key-0123456789"),
	NewAPIKey("initech", "acme-key-0123456789-and-more"),
	NewAPIKey("umbrella", "ACME-KEY-0123456789"),
}
