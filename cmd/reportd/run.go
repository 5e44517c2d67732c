package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/server"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/telemetry"
	"github.com/reportd/reportd/internal/webhook"
)

// run starts what args ask for and blocks until ctx is done or a part fails, then drains, within one
// REPORTD_SHUTDOWN_TIMEOUT: the HTTP server stops accepting and finishes its requests while the
// workers finish or requeue their jobs. Every part started is stopped on every way out, Redis last.
func run(ctx context.Context, args []string, getenv func(string) string, log *slog.Logger) error {
	m, err := parseMode(args)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log.Info("starting", "api", m.api, "worker", m.worker, "version", reportdVersion, "go", builtWith, "config", cfg.redacted())
	if oldToolchain(builtWith) {
		log.Warn("built with a Go that has known vulnerabilities in net/http and crypto/x509: build with "+
			patchedGo+" or later (GOTOOLCHAIN="+patchedGo+"), as go.mod's toolchain line asks", "go", builtWith)
	}
	defer log.Info("stopped")

	// Bind first: a taken address stops reportd before it starts Redis, workers or anything else.
	var apiLn, opsLn net.Listener
	if m.api {
		if apiLn, err = listenAPI(cfg, log); err != nil {
			return err
		}
		defer apiLn.Close() // on the ways out before the API serves it; a second Close does nothing
	}
	if cfg.OpsAddr != "" {
		if opsLn, err = net.Listen("tcp", cfg.OpsAddr); err != nil {
			return fmt.Errorf("listen on REPORTD_OPS_ADDR=%s: %w", cfg.OpsAddr, err)
		}
		defer opsLn.Close()
	}

	tracing, err := telemetry.Setup(ctx, getenv, telemetry.Process{Role: m.role(), Version: reportdVersion})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tracing.Shutdown(sctx); err != nil {
			log.Warn("traces not all sent", "err", err)
		}
	}()
	var tp trace.TracerProvider // nil: tracing is off
	if tracing.On {
		tp = tracing.Provider
		res := tracing.Resource.Set()
		service, _ := res.Value(semconv.ServiceNameKey)
		instance, _ := res.Value(semconv.ServiceInstanceIDKey)
		log.Info("tracing on: spans go over OTLP/HTTP to "+tracing.Endpoint, "endpoint", tracing.Endpoint,
			"service", service.String(), "instance", instance.String(), "role", m.role())
	} else {
		log.Info("tracing off: set OTEL_EXPORTER_OTLP_ENDPOINT to send spans over OTLP/HTTP")
	}

	rdb, closeRedis, answered, err := connectRedis(cfg, log)
	if err != nil {
		return err
	}
	defer closeRedis()
	st := store.NewStore(rdb, cfg.Retention, cfg.Tombstone)
	queues, err := setUpQueues(ctx, cfg, rdb, st, log)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.AdminToken == "" {
		cfg.AdminToken = rand.Text()
		log.Warn("REPORTD_ADMIN_TOKEN is not set: generated an admin token for /monitoring and /metrics; it is logged only here", "admin_token", cfg.AdminToken)
	}
	svc := server.New(serverOptions(cfg, rdb, st, queues, reg, tp, log))
	ready := svc.Ready(m.worker)
	defer svc.WatchRedis(ctx, time.Second, answered)()

	errc := make(chan error, 2)
	if cfg.OpsAddr != "" {
		// Stopped last of all (defers run in reverse), so that it answers while the rest drains.
		stopOps, err := svc.StartOps(opsLn, ready, errc)
		if err != nil {
			return err
		}
		defer stopOps()
	}
	stopWorkers := func() {}
	if m.worker {
		stop, err := svc.StartWorkers(ctx)
		if err != nil {
			return err
		}
		stopWorkers = sync.OnceFunc(stop)
		defer stopWorkers() // on the ways out before the drain below
	}
	var api *server.APIServer
	if m.api {
		if api, err = svc.StartAPI(ctx, apiLn, ready, errc); err != nil {
			return err
		}
		defer api.Close()
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	case runErr = <-errc:
		log.Error("stopping after failure", "err", runErr)
	}
	// The API drains while the workers finish or requeue their jobs: an all-in-one process stops
	// within one REPORTD_SHUTDOWN_TIMEOUT, not one for each.
	var wg sync.WaitGroup
	wg.Go(stopWorkers)
	if api != nil {
		runErr = errors.Join(runErr, api.Drain(cfg.ShutdownTimeout))
	}
	wg.Wait()
	return runErr
}

// serverOptions is the wiring cfg asks for, on the process's Redis, store, queues, registry and tracer
// (nil: tracing is off).
func serverOptions(cfg config, rdb redis.UniversalClient, st *store.Store, queues queueSetup, reg *prometheus.Registry, tp trace.TracerProvider, log *slog.Logger) server.Options {
	o := server.Options{
		Redis:    rdb,
		Store:    st,
		Shards:   queues.shards,
		Queues:   queues.served,
		Policy:   jobs.Policy{Retention: cfg.Retention, Tombstone: cfg.Tombstone, JobTimeout: cfg.JobTimeout, MaxRetry: cfg.MaxRetry},
		Limits:   jobs.Limits{SubmitsPerSecond: cfg.SubmitsPerSecond, SubmitBurst: cfg.SubmitBurst, MaxOpenJobs: cfg.MaxOpenJobs},
		API:      server.API{Keys: cfg.APIKeys, CORSOrigins: cfg.CORSOrigins, AdminToken: cfg.AdminToken},
		Log:      log,
		Registry: reg,
		Tracer:   tp,
		Worker: server.Worker{
			Ledger:           report.NewSyntheticLedger(cfg.RowsPerDay),
			Concurrency:      cfg.Concurrency,
			CheckInterval:    cfg.CheckInterval,
			DelayedCheck:     cfg.DelayedCheck,
			JanitorInterval:  cfg.JanitorInterval,
			ShutdownTimeout:  cfg.ShutdownTimeout,
			ProgressEvery:    cfg.ProgressEvery,
			CancelCheckEvery: time.Second,
		},
	}
	if cfg.WebhookSecret != "" {
		o.Webhooks = &server.Webhooks{
			Policy:      webhook.Policy{AllowInsecure: cfg.WebhookAllowInsecure, AllowPrivate: cfg.WebhookAllowPrivate},
			Secret:      cfg.WebhookSecret,
			Concurrency: cfg.WebhookConcurrency,
			Timeout:     cfg.WebhookTimeout,
			Schedule:    cfg.WebhookSchedule,
		}
	}
	return o
}

// listenAPI binds the API's address, refusing one other hosts can reach when the API is open (no keys)
// unless REPORTD_ALLOW_OPEN says so.
func listenAPI(cfg config, log *slog.Logger) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	if len(cfg.APIKeys) == 0 {
		if !isLoopback(ln.Addr()) && !cfg.AllowOpen {
			_ = ln.Close()
			return nil, fmt.Errorf("REPORTD_ADDR=%s is reachable from other hosts and no API keys are set: set REPORTD_API_KEYS (or REPORTD_API_KEYS_FILE), or REPORTD_ALLOW_OPEN=true to serve it open", cfg.Addr)
		}
		log.Warn("no API keys are set: the API is open, every request is one anonymous client", "addr", ln.Addr().String())
	} else {
		log.Info("API keys set", "clients", clientNames(cfg.APIKeys))
	}
	return ln, nil
}

// isLoopback reports whether a listener's address is reachable only from this host.
func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
