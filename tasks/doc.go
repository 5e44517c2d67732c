// Package tasks holds reportd's asynq task types, their handlers, and the report domain they compute: date ranges, the order ledger and the sales summary.
package tasks
