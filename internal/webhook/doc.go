// Package webhook sends reportd's webhooks per the Standard Webhooks specification: the event body,
// its signature, the guard that keeps deliveries off internal addresses, and one delivery attempt
// over HTTP. Queueing the attempts is the caller's business, so the package needs no asynq.
package webhook
