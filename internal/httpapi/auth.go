package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/reportd/reportd/internal/jobs"
)

// APIKey is one client's key, kept only as its hash.
type APIKey struct {
	Client string
	hash   [sha256.Size]byte
}

// NewAPIKey returns client's key, hashed.
func NewAPIKey(client, key string) APIKey {
	return APIKey{Client: client, hash: sha256.Sum256([]byte(key))}
}

// ParseAPIKeys reads "name:key" entries, separated by commas or newlines (blank lines and lines
// starting with # are skipped). Client names are 1-64 of [A-Za-z0-9_.-]; keys at least 16 characters.
func ParseAPIKeys(s string) ([]APIKey, error) {
	var out []APIKey
	seen := map[string]bool{}
	for _, entry := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' }) {
		entry = strings.TrimSpace(entry)
		if entry == "" || strings.HasPrefix(entry, "#") {
			continue
		}
		name, key, ok := strings.Cut(entry, ":")
		switch {
		case !ok:
			return nil, errors.New(`an entry is not "name:key"`)
		case !validClient(name):
			return nil, fmt.Errorf("client name %q: use 1-64 letters, digits, '_', '.', '-'", name)
		case len(key) < 16:
			return nil, fmt.Errorf("the key of client %q is shorter than 16 characters", name)
		case seen[name]:
			return nil, fmt.Errorf("client %q is listed twice", name)
		}
		seen[name] = true
		out = append(out, NewAPIKey(name, key))
	}
	return out, nil
}

func validClient(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// ErrBadKey is why a request was refused: no key, or not one of the configured ones.
var ErrBadKey = errors.New("missing or unknown API key")

// identify returns the client whose key the Authorization header carries. It compares the key's hash
// with every configured hash, in constant time and without stopping at a match, so that timing tells
// nothing about which keys exist.
func identify(keys []APIKey, authorization string) (string, error) {
	if len(keys) == 0 {
		return jobs.Anonymous, nil
	}
	scheme, key, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
		return "", ErrBadKey
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(key)))
	client := ""
	for _, k := range keys {
		if subtle.ConstantTimeCompare(sum[:], k.hash[:]) == 1 {
			client = k.Client
		}
	}
	if client == "" {
		return "", ErrBadKey
	}
	return client, nil
}

// clientKey is the context key of the authenticated client's name.
type clientKey struct{}

// Client is the client a request was authenticated as: jobs.Anonymous when the API has no keys. The
// authentication middleware puts it in the request's context once, before the request is read further.
func Client(ctx context.Context) string {
	if c, ok := ctx.Value(clientKey{}).(string); ok {
		return c
	}
	return jobs.Anonymous
}

// authenticate returns the check of a request's key against keys, for the spec's security scheme.
func authenticate(keys []APIKey) func(*http.Request) (string, error) {
	return func(r *http.Request) (string, error) { return identify(keys, r.Header.Get("Authorization")) }
}
