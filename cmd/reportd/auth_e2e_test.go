package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/internal/testkit/reportdproc"
)

// The keys of the end-to-end clients: long, and unlike anything else reportd writes.
const (
	e2eAcmeKey   = "e2e-acme-KEY-0123456789abcdef"
	e2eGlobexKey = "e2e-globex-KEY-fedcba9876543210"
	e2eWrongKey  = "e2e-nobody-KEY-5555555555555555"
	e2eAdmin     = "e2e-admin-token-for-tests"
)

// doAs sends a request with Authorization: Bearer key (none for ""), a JSON body if body is not empty,
// and header pairs, and reads the answer whole.
func doAs(t *testing.T, key, method, url, body string, header ...string) response {
	t.Helper()
	if key != "" {
		header = append([]string{"Authorization", "Bearer " + key}, header...)
	}
	return mustTry(t, method, url, body, header...)
}

// TestAPIKeysE2E runs reportd with two clients' keys, from REPORTD_API_KEYS and from a key file: a
// request without a right key is refused, a client sees only its jobs and has its own rate, and no key
// is ever logged, exposed in the metrics or echoed.
func TestAPIKeysE2E(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(file, []byte("# reportd clients\nacme:"+e2eAcmeKey+"\n\n  globex:"+e2eGlobexKey+"  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, keys := range map[string]map[string]string{
		"env":  {"REPORTD_API_KEYS": "acme:" + e2eAcmeKey + ",globex:" + e2eGlobexKey},
		"file": {"REPORTD_API_KEYS_FILE": file},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{"REPORTD_ADMIN_TOKEN": e2eAdmin, "REPORTD_RATE_LIMIT": "0.5", "REPORTD_RATE_BURST": "2"}
			for k, v := range keys {
				vars[k] = v
			}
			in := start(t, nil, reportdproc.Vars(vars))
			var seen bytes.Buffer // every answer, to look for the keys in
			send := func(key, method, path, body string, header ...string) response {
				t.Helper()
				res := doAs(t, key, method, in.base+path, body, header...)
				_ = res.header.Write(&seen)
				seen.Write(res.body)
				return res
			}

			for _, auth := range []string{"", "Bearer " + e2eWrongKey, "Basic " + e2eAcmeKey, e2eAcmeKey} {
				res := send("", http.MethodPost, "/v1/reports", `{"range":"2026-01"}`, "Authorization", auth)
				checkProblem(t, "POST with Authorization "+auth, res, http.StatusUnauthorized)
				if got := res.header.Get("WWW-Authenticate"); got != `Bearer realm="reportd"` {
					t.Errorf("401 WWW-Authenticate = %q", got)
				}
			}

			res := send(e2eAcmeKey, http.MethodPost, "/v1/reports", `{"range":"2026-01"}`)
			if res.status != http.StatusAccepted {
				t.Fatalf("acme's POST = %s", res)
			}
			loc := res.header.Get("Location")
			checkProblem(t, "globex GET acme's job", send(e2eGlobexKey, http.MethodGet, loc, ""), http.StatusNotFound)
			testkit.Eventually(t, 15*time.Second, 50*time.Millisecond, func() error {
				res := send(e2eAcmeKey, http.MethodGet, loc, "")
				if res.status == http.StatusSeeOther {
					return nil
				}
				if res.status != http.StatusOK {
					t.Fatalf("acme GET its job = %s", res)
				}
				return fmt.Errorf("acme's job %s not done", loc)
			})
			checkProblem(t, "globex GET acme's result", send(e2eGlobexKey, http.MethodGet, loc+"/result", ""), http.StatusNotFound)
			if res := send(e2eAcmeKey, http.MethodGet, loc+"/result", ""); res.status != http.StatusOK {
				t.Errorf("acme GET its result = %s", res)
			}
			for key, want := range map[string]int{e2eAcmeKey: 1, e2eGlobexKey: 0} {
				res := send(key, http.MethodGet, "/v1/reports", "")
				var l gen.JobList
				if err := json.Unmarshal(res.body, &l); res.status != http.StatusOK || err != nil || len(l.Items) != want {
					t.Errorf("list as %.10s... = %s, want %d jobs", key, res, want)
				}
			}

			// The rate is per client: acme has one submission of its burst of 2 left, globex both.
			if res := send(e2eAcmeKey, http.MethodPost, "/v1/reports", `{"range":"2026-02"}`); res.status != http.StatusAccepted {
				t.Errorf("acme's 2nd POST = %s", res)
			}
			limited := send(e2eAcmeKey, http.MethodPost, "/v1/reports", `{"range":"2026-03"}`)
			checkProblem(t, "acme's 3rd POST", limited, http.StatusTooManyRequests)
			if ra := limited.header.Get("Retry-After"); ra == "" || ra == "0" {
				t.Errorf("429 Retry-After = %q, want a positive number of seconds", ra)
			}
			for i := range 2 {
				if res := send(e2eGlobexKey, http.MethodPost, "/v1/reports", `{"range":"2026-02"}`); res.status != http.StatusAccepted {
					t.Errorf("globex's POST %d while acme is limited = %s", i+1, res)
				}
			}

			metrics := doAs(t, e2eAdmin, http.MethodGet, in.base+"/metrics", "")
			if metrics.status != http.StatusOK || !bytes.Contains(metrics.body, []byte("reportd_http_requests_total")) {
				t.Fatalf("GET /metrics = %d", metrics.status)
			}
			startLine, ok := in.log.WaitFor(0, nil, testkit.MsgIs("starting"))
			if !ok {
				t.Fatalf("no starting line; log:\n%s", in.log)
			}
			cfg, _ := startLine.Fields["config"].(map[string]any)
			if got, _ := json.Marshal(cfg["REPORTD_API_KEYS"]); string(got) != `["acme","globex"]` {
				t.Errorf("the starting line shows REPORTD_API_KEYS as %s, want the client names [\"acme\",\"globex\"]", got)
			}
			for what, b := range map[string][]byte{"the log": []byte(in.log.String()), "the metrics": metrics.body, "an answer": seen.Bytes()} {
				for _, k := range []string{e2eAcmeKey, e2eGlobexKey, e2eWrongKey} {
					if bytes.Contains(b, []byte(k)) {
						t.Errorf("%s holds the key %q", what, k)
					}
				}
			}
		})
	}
}

// TestAPIKeysConfigE2E checks the refusals of a key configuration: an error names the variable and the
// client, never a key.
func TestAPIKeysConfigE2E(t *testing.T) {
	t.Parallel()
	short := "short-key"
	tests := []struct {
		name string
		vars map[string]string
		want string
	}{
		{name: "short-key", vars: map[string]string{"REPORTD_API_KEYS": "acme:" + e2eAcmeKey + ",globex:" + short}, want: "globex"},
		{name: "duplicate-client", vars: map[string]string{"REPORTD_API_KEYS": "acme:" + e2eAcmeKey + ",acme:" + e2eGlobexKey}, want: "acme"},
		{name: "no-colon", vars: map[string]string{"REPORTD_API_KEYS": e2eAcmeKey}, want: "REPORTD_API_KEYS"},
		{name: "bad-client-name", vars: map[string]string{"REPORTD_API_KEYS": "ac me:" + e2eAcmeKey}, want: "ac me"},
		{name: "both-sources", vars: map[string]string{"REPORTD_API_KEYS": "acme:" + e2eAcmeKey, "REPORTD_API_KEYS_FILE": "/nonexistent"}, want: "REPORTD_API_KEYS_FILE"},
		{name: "missing-file", vars: map[string]string{"REPORTD_API_KEYS_FILE": filepath.Join(t.TempDir(), "none")}, want: "REPORTD_API_KEYS_FILE"},
		{name: "open-on-all-interfaces", vars: map[string]string{"REPORTD_ADDR": "0.0.0.0:0"}, want: "REPORTD_API_KEYS"},
		{name: "bad-allow-open", vars: map[string]string{"REPORTD_ALLOW_OPEN": "maybe"}, want: "REPORTD_ALLOW_OPEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			sink := testkit.NewLogSink()
			err := run(ctx, nil, env(reportdproc.Vars(tt.vars)), logTo(t, sink))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run = %v, want an error naming %s", err, tt.want)
			}
			for _, k := range []string{e2eAcmeKey, e2eGlobexKey, short} {
				if strings.Contains(err.Error(), k) || strings.Contains(sink.String(), k) {
					t.Errorf("the error or the log holds the key %q: %v\n%s", k, err, sink)
				}
			}
		})
	}
}

// TestAllowOpenE2E: on an address other hosts can reach, reportd serves with keys, or without them
// only when REPORTD_ALLOW_OPEN says so, and then warns.
func TestAllowOpenE2E(t *testing.T) {
	t.Parallel()
	t.Run("allow-open", func(t *testing.T) {
		t.Parallel()
		in := start(t, nil, reportdproc.Vars(map[string]string{"REPORTD_ADDR": "0.0.0.0:0", "REPORTD_ALLOW_OPEN": "true"}))
		if _, ok := in.log.WaitFor(0, nil, func(l testkit.LogLine) bool {
			msg, _ := l.Fields["msg"].(string)
			return l.Fields["level"] == "WARN" && strings.Contains(msg, "no API keys")
		}); !ok {
			t.Errorf("an open API on all interfaces did not warn; log:\n%s", in.log)
		}
		if res := doAs(t, "", http.MethodGet, strings.Replace(in.base, "0.0.0.0", "127.0.0.1", 1)+"/v1/reports", ""); res.status != http.StatusOK {
			t.Errorf("GET /v1/reports without a key on an open API = %s", res)
		}
	})
	t.Run("keys", func(t *testing.T) {
		t.Parallel()
		in := start(t, nil, reportdproc.Vars(map[string]string{"REPORTD_ADDR": "0.0.0.0:0", "REPORTD_API_KEYS": "acme:" + e2eAcmeKey}))
		base := strings.Replace(in.base, "0.0.0.0", "127.0.0.1", 1)
		checkProblem(t, "GET without a key", doAs(t, "", http.MethodGet, base+"/v1/reports", ""), http.StatusUnauthorized)
		if res := doAs(t, e2eAcmeKey, http.MethodGet, base+"/v1/reports", ""); res.status != http.StatusOK {
			t.Errorf("GET with acme's key = %s", res)
		}
	})
}
