package faults

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reportd/reportd/internal/telemetry"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/internal/testkit/reportdproc"
)

// TestLogsThroughRedisOutage: reportd (API and worker in one process) on a redis-server that stops for
// longer than telemetry.RepeatInterval and comes back. Every line it writes, go-redis's, asynq's and
// the metrics collector's among them, is one JSON object; the outage is marked by a "redis
// unreachable" line and a "redis reachable" one; and it does not flood: no failure is logged twice
// within the interval, but across the line that says it ended (a failure lasting D gives at most
// D/interval + 2 lines), every failure held back ends with such a line, and the lines say how many
// they held back.
func TestLogsThroughRedisOutage(t *testing.T) {
	skipShort(t, "keeps Redis away for more than telemetry.RepeatInterval (5 s), and waits twice that for the ends")
	t.Parallel()
	const interval = telemetry.RepeatInterval
	redis := startRedis(t, durableConf...)
	rd := reportdproc.Start(t, "reportd", nil, reportdVars(redis.URL, nil))
	c := newClient()
	id := submit(t, c, rd.URL, "2026-01")
	awaitAllDone(t, c, func() string { return rd.URL }, []string{id}, 20*time.Second)
	scrape := func() exchange {
		return do(c, http.MethodGet, rd.URL+"/metrics", map[string]string{"Authorization": "Bearer " + adminToken}, "", 10*time.Second)
	}
	if e := scrape(); e.status != http.StatusOK {
		t.Fatalf("GET /metrics before the outage: %s", e)
	}

	redis.terminate(t)
	down := time.Now()
	if _, ok := rd.Log.WaitFor(10*time.Second, rd.Exited(), testkit.MsgIs("redis unreachable")); !ok {
		t.Fatalf("no redis unreachable line after Redis stopped; log:\n%s", rd.Log.Tail(40))
	}
	// A scrape while Redis is away: asynq's queue collector logs through the standard library's log.
	scrape()
	// Away until some failure was held back and counted (an interval after it began).
	if _, ok := rd.Log.WaitFor(3*interval, rd.Exited(), func(l testkit.LogLine) bool { return l.Fields["repeats"] != nil }); !ok {
		t.Fatalf("no line counted repeats %s after Redis stopped; log:\n%s", 3*interval, rd.Log.Tail(60))
	}
	scrape()
	redis.Restart()
	back := time.Now()
	if _, ok := rd.Log.WaitFor(10*time.Second, rd.Exited(), testkit.MsgIs("redis reachable")); !ok {
		t.Fatalf("no redis reachable line after Redis was back; log:\n%s", rd.Log.Tail(40))
	}
	// Every failure held back ends, two intervals after its last occurrence.
	testkit.Eventually(t, 4*interval, 100*time.Millisecond, func() error {
		if open := openFailures(rd.Log.All(func(testkit.LogLine) bool { return true })); len(open) > 0 {
			return fmt.Errorf("failures held back with no ended line yet: %q", open)
		}
		return nil
	})
	id = submit(t, c, rd.URL, "2026-01")
	awaitAllDone(t, c, func() string { return rd.URL }, []string{id}, 20*time.Second)
	if _, err := rd.Stop(15 * time.Second); err != nil || rd.ExitStatus() != "exit 0" {
		t.Fatalf("stop: %v (%s)", err, rd.ExitStatus())
	}

	raw := rd.Log.String()
	if !strings.HasSuffix(raw, "\n") {
		t.Errorf("the log ends in a partial line: %q", raw[max(0, len(raw)-200):])
	}
	lines := rd.Log.All(func(testkit.LogLine) bool { return true })
	var failures, held int
	components := map[string]int{}
	for _, l := range lines {
		if s, ok := l.Fields["unparsed"].(string); ok {
			t.Errorf("a line that is not one JSON object: %q", s)
			continue
		}
		if l.Str("level") != "WARN" && l.Str("level") != "ERROR" {
			continue
		}
		failures++
		components[l.Str("component")]++
		if r, ok := l.Fields["repeats"].(map[string]any); ok {
			n, _ := r["count"].(float64)
			held += int(n)
		}
	}
	if held == 0 {
		t.Errorf("no line counted a failure held back: the outage was not long enough to show the limit")
	}
	collector := slices.ContainsFunc(lines, func(l testkit.LogLine) bool {
		return strings.HasPrefix(l.Str("msg"), "Failed to collect metrics data") && l.Str("level") == "WARN"
	})
	if !collector || components["go-redis"] == 0 || components["asynq"] == 0 {
		t.Errorf("want warnings of asynq's collector (%v), go-redis (%d) and asynq (%d), each in JSON", collector, components["go-redis"], components["asynq"])
	}
	checkRepeatLimit(t, lines, interval)
	t.Logf("Redis away %.1fs: %d warnings and errors written, %d more held back and counted; by component: %v",
		back.Sub(down).Seconds(), failures, held, components)
}

// digits is a run of digits, read as one by telemetry.Repeats.
var digits = regexp.MustCompile(`[0-9]+`)

// failureOf is what makes two lines the same failure for telemetry.Repeats, as far as a JSON line
// tells: the level, the message and the attributes, digits read as one, but for the time, the count
// of repeats and durations (written "1.5s"). (Two job ids, which the limit reads apart, read the same
// here only if they differ in digits alone.)
func failureOf(l testkit.LogLine) string {
	f := map[string]any{}
	for k, v := range l.Fields {
		if s, ok := v.(string); ok {
			if _, err := time.ParseDuration(s); err == nil {
				continue
			}
		}
		if k != "time" && k != "repeats" {
			f[k] = v
		}
	}
	b, _ := json.Marshal(f) // sorted keys
	return digits.ReplaceAllString(string(b), "#")
}

// ended reports whether l is the line that says a failure ended.
func ended(l testkit.LogLine) bool {
	r, _ := l.Fields["repeats"].(map[string]any)
	return r["ended"] == true
}

// openFailures are the failures whose last line counts repeats and is not an ended line.
func openFailures(lines []testkit.LogLine) []string {
	last := map[string]testkit.LogLine{}
	for _, l := range lines {
		if l.Str("level") == "WARN" || l.Str("level") == "ERROR" {
			last[failureOf(l)] = l
		}
	}
	var open []string
	for k, l := range last {
		if l.Fields["repeats"] != nil && !ended(l) {
			open = append(open, k)
		}
	}
	return open
}

// checkRepeatLimit fails t if two lines of one failure, neither an ended line, are less than interval
// apart by their own times with no ended line of it between them. The times are the wall clock's, the
// limit's the monotonic clock's: they may differ by the clock's slew, a few ms in seconds.
func checkRepeatLimit(t *testing.T, lines []testkit.LogLine, interval time.Duration) {
	t.Helper()
	const slew = 10 * time.Millisecond
	prev := map[string]time.Time{}
	for _, l := range lines {
		if l.Str("level") != "WARN" && l.Str("level") != "ERROR" {
			continue
		}
		k := failureOf(l)
		if ended(l) {
			delete(prev, k)
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, l.Str("time"))
		if err != nil {
			t.Errorf("line without a time: %v", l.Fields)
			continue
		}
		if p, ok := prev[k]; ok && at.Sub(p) < interval-slew {
			t.Errorf("%s logged again %s after its previous line, within the interval %s", k, at.Sub(p), interval)
		}
		prev[k] = at
	}
}

// TestRefusedDatabaseStopsStart: a REDIS_URL whose database the server does not have stops reportd
// at once, exit status 1, its last line a JSON error naming REDIS_URL and what Redis said; every line
// before it is JSON too.
func TestRefusedDatabaseStopsStart(t *testing.T) {
	t.Parallel()
	redis := startRedis(t)
	p := reportdproc.RunToExit(t, "reportd", nil, reportdVars(redis.URL+"/99", nil), 20*time.Second)
	if got := p.ExitStatus(); got != "exit status 1" {
		t.Errorf("reportd with a database Redis does not have: %s, want exit status 1", got)
	}
	lines := p.Log.All(func(testkit.LogLine) bool { return true })
	for _, l := range lines {
		if s, ok := l.Fields["unparsed"].(string); ok {
			t.Errorf("a line that is not one JSON object: %q", s)
		}
		if l.Str("msg") == "listening" {
			t.Errorf("reportd listened before it refused to start")
		}
	}
	if len(lines) == 0 {
		t.Fatal("reportd wrote nothing")
	}
	last := lines[len(lines)-1]
	if err := last.Str("err"); last.Str("level") != "ERROR" || !strings.Contains(err, "REDIS_URL") || !strings.Contains(err, "DB index is out of range") {
		t.Errorf("last line %v, want an error that names REDIS_URL and says DB index is out of range", last.Fields)
	}
}
