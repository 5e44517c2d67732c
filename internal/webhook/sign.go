package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Signer signs webhook messages per the Standard Webhooks specification (symmetric, "v1"): the
// signature is the base64 HMAC-SHA256, under the secret's key, of "{msg id}.{unix seconds}.{body}".
type Signer struct{ key []byte }

// ParseSecret reads a secret in the Standard Webhooks form "whsec_<base64 of the key>".
func ParseSecret(secret string) (*Signer, error) {
	b64, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return nil, errors.New(`a webhook secret has the form "whsec_<base64>"`)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("webhook secret: the part after whsec_ is not base64: %w", err)
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("webhook secret: %d bytes of key; use at least 16 (24-64 is usual)", len(key))
	}
	return &Signer{key: key}, nil
}

// Sign returns the webhook-signature header value for one attempt of message id sent at ts.
func (s *Signer) Sign(id string, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
