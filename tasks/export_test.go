package tasks

// Exported for the tests of package tasks_test, which are external because internal/jobs (the
// production Lifecycle they run against) imports tasks.

// MaxWebhookRetries is maxWebhookRetries.
const MaxWebhookRetries = maxWebhookRetries
