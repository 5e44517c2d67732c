// Package tasks holds reportd's asynq task types and their handlers: the report jobs, which run
// package report's summary and store its result, and the webhook deliveries that announce a job's end.
package tasks
