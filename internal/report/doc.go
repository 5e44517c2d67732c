// Package report is reportd's report domain: the date ranges a report may cover, the order ledger it
// reads and the sales summary it computes, with its CSV form. It knows nothing of queues or Redis, so
// that it can be read, tested and benchmarked on its own.
package report
