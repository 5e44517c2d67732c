package impl

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"github.com/getkin/kin-openapi/openapi3filter"
)

// Anonymous is the one client of a deployment with no API keys.
const Anonymous = "anonymous"

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
		return Anonymous, nil
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

// callerKey is the context key of the caller's identity.
type callerKey struct{}

// caller is filled in by the spec's authentication hook, which cannot replace the request's context:
// a middleware puts an empty one there first.
type caller struct{ client string }

func withCaller(ctx context.Context) (context.Context, *caller) {
	c := &caller{}
	return context.WithValue(ctx, callerKey{}, c), c
}

// clientFrom is the authenticated client of a request; Anonymous when the API has no keys.
func clientFrom(ctx context.Context) string {
	if c, ok := ctx.Value(callerKey{}).(*caller); ok && c.client != "" {
		return c.client
	}
	return Anonymous
}

// authenticate is the validator's authentication hook for the apiKey scheme.
func authenticate(keys []APIKey) openapi3filter.AuthenticationFunc {
	return func(ctx context.Context, in *openapi3filter.AuthenticationInput) error {
		client, err := identify(keys, in.RequestValidationInput.Request.Header.Get("Authorization"))
		if err != nil {
			return err
		}
		if c, ok := in.RequestValidationInput.Request.Context().Value(callerKey{}).(*caller); ok {
			c.client = client
		}
		return nil
	}
}
