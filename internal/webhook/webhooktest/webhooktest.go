// Package webhooktest helps the tests of webhook senders (package webhook, the asynq tasks that use it,
// the API and reportd end to end) to a fresh secret, to a receiver that verifies and records what it
// gets, and to the check of an event body against openapi.yaml.
package webhooktest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/reportd/reportd/gen"
)

// NewSecret returns a fresh secret of n random bytes in the whsec_ form.
func NewSecret(t testing.TB, n int) string {
	t.Helper()
	key := make([]byte, n)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

// CheckEventSchema validates an event body against WebhookEvent in openapi.yaml.
func CheckEventSchema(t testing.TB, body []byte) {
	t.Helper()
	spec, err := gen.GetSpec()
	if err != nil {
		t.Fatalf("load spec: %v", err)
	}
	ref := spec.Components.Schemas["WebhookEvent"]
	if ref == nil || ref.Value == nil {
		t.Fatal("openapi.yaml has no WebhookEvent schema")
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("event body %s: %v", body, err)
	}
	if err := ref.Value.VisitJSON(v); err != nil {
		t.Errorf("event body %s does not match WebhookEvent: %v", body, err)
	}
}
