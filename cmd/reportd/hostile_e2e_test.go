package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/testkit/reportdproc"
)

// rawResult is what a server made of raw bytes: an answer, or a connection closed without one.
type rawResult struct {
	status int
	header http.Header
	body   []byte
	closed bool
	// last says the server closes the connection after this answer (Connection: close).
	last bool
}

func (r rawResult) String() string {
	if r.closed {
		return "connection closed without an answer"
	}
	return fmt.Sprintf("%d %v %.300s", r.status, r.header, r.body)
}

// rawExchange opens a connection to addr, writes to it with send (while reading, so that an early
// answer is seen), and reads one answer, failing the test if none comes and the connection stays open
// for longer than timeout: a server that hangs.
func rawExchange(t *testing.T, addr string, timeout time.Duration, send func(c net.Conn) error) rawResult {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() { wrote <- send(c) }()
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("no answer and the connection still open after %s", timeout)
	case err != nil:
		_ = c.Close()
		<-wrote
		return rawResult{closed: true}
	}
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%d answer whose body did not end in %s", res.StatusCode, timeout)
	}
	_ = c.Close()
	<-wrote
	return rawResult{status: res.StatusCode, header: res.Header, body: body, last: res.Close}
}

// write returns a send that writes the chunks of raw in turn.
func write(raw ...string) func(net.Conn) error {
	return func(c net.Conn) error {
		for _, s := range raw {
			if _, err := io.WriteString(c, s); err != nil {
				return err
			}
		}
		return nil
	}
}

// post is a raw HTTP/1.1 POST of body to /v1/reports with a Content-Length and extra header lines.
func post(body string, header ...string) string {
	h := strings.Join(append([]string{"Content-Type: application/json", "Content-Length: " + strconv.Itoa(len(body))}, header...), "\r\n")
	return "POST /v1/reports HTTP/1.1\r\nHost: reportd\r\n" + h + "\r\n\r\n" + body
}

// getRaw is a raw HTTP/1.1 GET of target.
func getRaw(target string, header ...string) string {
	h := ""
	for _, l := range header {
		h += l + "\r\n"
	}
	return "GET " + target + " HTTP/1.1\r\nHost: reportd\r\n" + h + "\r\n"
}

// checkClean fails t unless r is a clean refusal: a closed connection (when closed allows it), or a
// 4xx whose status is one of want. An answer from reportd is a problem of its status; net/http's own
// refusals of what is not HTTP (written before any handler runs) are plain text.
func checkClean(t *testing.T, r rawResult, closed bool, want ...int) {
	t.Helper()
	if r.closed {
		if !closed {
			t.Errorf("the connection was closed without an answer, want one of %v", want)
		}
		return
	}
	ok := false
	for _, w := range want {
		ok = ok || r.status == w
	}
	if !ok {
		t.Errorf("answer %s, want one of %v", r, want)
		return
	}
	if r.status < 400 {
		return
	}
	mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type"))
	if mt == "text/plain" && r.last {
		return // net/http's refusal of what is not HTTP, before any handler
	}
	var p gen.Problem
	if mt != "application/problem+json" || json.Unmarshal(r.body, &p) != nil || p.Status != r.status || p.Type == "" || p.Title == "" || p.Detail == "" {
		t.Errorf("a %d that is not a complete problem of its status: %s", r.status, r)
	}
}

// TestHostileInputE2E sends what a hostile or broken client might to the real server, so that its own
// limits and timeouts apply. Each is refused cleanly (a 4xx, or a closed connection), never with a 5xx
// and never by hanging, and the server answers normal requests after each.
func TestHostileInputE2E(t *testing.T) {
	t.Parallel()
	in := start(t, nil, reportdproc.Vars(map[string]string{"REPORTD_SHUTDOWN_TIMEOUT": "1s"}))
	addr := strings.TrimPrefix(in.base, "http://")
	loc := submit(t, in.base, "2026-01")
	id := strings.TrimPrefix(loc, "/v1/reports/")
	var mu sync.Mutex // one health check at a time: they share the server's limits
	alive := func(t *testing.T) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		client := &http.Client{Timeout: 2 * time.Second}
		res, err := client.Get(in.base + "/healthz")
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("GET /healthz afterwards: %v %v", res, err)
		}
		_ = res.Body.Close()
		res, err = client.Post(in.base+"/v1/reports", "application/json", strings.NewReader(`{"range":"2026-02"}`))
		if err != nil || res.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /v1/reports afterwards: %v %v", res, err)
		}
		_ = res.Body.Close()
	}
	big := `{"range":"2026-Q1","pad":"` + strings.Repeat("x", 70<<10) + `"}`
	manyHeaders := ""
	for i := range 10000 {
		manyHeaders += "X-H-" + strconv.Itoa(i) + ": v\r\n"
	}
	tests := []struct {
		name    string
		send    func(net.Conn) error
		closed  bool // a closed connection is a clean refusal
		want    []int
		detail  string // what reportd's problem must say, if it answers one
		timeout time.Duration
	}{
		{name: "huge-json", send: write(post(big)), want: []int{413}, detail: "65536"},
		{name: "huge-declared-length", send: write("POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{\"range\":"), want: []int{413}, detail: "100000000"},
		{name: "deeply-nested", send: write(post(strings.Repeat(`{"a":`, 1000) + "1" + strings.Repeat("}", 1000))), want: []int{400}, detail: "deeper"},
		{name: "deeply-nested-arrays", send: write(post(strings.Repeat("[", 1000) + strings.Repeat("]", 1000))), want: []int{400}, detail: "deeper"},
		{name: "duplicate-keys", send: write(post(`{"range":"2026-Q1","range":"2026-Q2"}`)), want: []int{400}, detail: "twice"},
		{name: "invalid-utf8", send: write(post("{\"range\":\"2026-Q1\xff\xfe\"}")), want: []int{400}, detail: "UTF-8"},
		{name: "nul-in-body", send: write(post("{\"range\":\"2026-Q1\x00\"}")), want: []int{400}, detail: "not valid JSON"},
		{name: "nul-after-body", send: write(post("{\"range\":\"2026-Q1\"}\x00")), want: []int{400}, detail: "not valid JSON"},
		{name: "nul-in-header-value", send: write(post(`{"range":"2026-Q1"}`, "Idempotency-Key: a\x00b")), closed: true, want: []int{400}},
		{name: "nul-in-header-name", send: write(post(`{"range":"2026-Q1"}`, "X-A\x00b: 1")), closed: true, want: []int{400}},
		{name: "nul-in-path", send: write(getRaw("/v1/reports/\x00")), closed: true, want: []int{400, 404}},
		{name: "traversal", send: write(getRaw("/v1/reports/../../etc/passwd")), want: []int{400, 404}},
		{name: "traversal-to-job", send: write(getRaw("/v1/reports/x/../" + id)), want: []int{400, 404}},
		{name: "traversal-encoded", send: write(getRaw("/v1/reports/%2e%2e/x")), want: []int{400, 404}},
		{name: "traversal-encoded-id", send: write(getRaw("/v1/reports/%2e%2e")), want: []int{400, 404}},
		{name: "encoded-slash", send: write(getRaw("/v1/reports/" + id + "%2Fresult")), want: []int{400, 404}},
		{name: "encoded-nul", send: write(getRaw("/v1/reports/%00")), want: []int{400, 404}},
		{name: "bad-percent-encoding", send: write(getRaw("/v1/reports/%zz")), closed: true, want: []int{400, 404}},
		{name: "ten-thousand-headers", send: write("GET /healthz HTTP/1.1\r\nHost: x\r\n" + manyHeaders + "\r\n"), closed: true, want: []int{431}},
		{name: "one-huge-header", send: write(getRaw("/healthz", "X-Big: "+strings.Repeat("a", 100<<10))), closed: true, want: []int{431}},
		{name: "huge-request-line", send: write(getRaw("/v1/reports/" + strings.Repeat("a", 100<<10))), closed: true, want: []int{414, 431}},
		{name: "huge-authorization", send: write(getRaw("/v1/reports", "Authorization: Bearer "+strings.Repeat("k", 100<<10))), closed: true, want: []int{431}},
		{name: "not-http", send: write("HELLO\r\n\r\n"), closed: true, want: []int{400}},
		{name: "no-host", send: write("GET /healthz HTTP/1.1\r\n\r\n"), closed: true, want: []int{400}},
		{name: "two-lengths", send: write("POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 19\r\nContent-Length: 5\r\n\r\n{\"range\":\"2026-Q1\"}"), closed: true, want: []int{400}},
		// RFC 9112 6.3 lets a server reject this or read it by its Transfer-Encoding; net/http reads it.
		{name: "length-and-chunked", send: write("POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n13\r\n{\"range\":\"2026-Q1\"}\r\n0\r\n\r\n"), closed: true, want: []int{400, 202}},
		{name: "bad-chunk", send: write("POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"), closed: true, want: []int{400}},
		// RFC 9112 6.1: a transfer coding the server does not know is a 501, net/http's answer.
		{name: "unknown-transfer-coding", send: write("POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"), closed: true, want: []int{400, 501}},
		{name: "chunked-past-64KiB", send: trickleChunks(80<<10, 4<<10, 5*time.Millisecond), closed: true, want: []int{413}, detail: "65536"},
		{name: "body-ends-early", send: func(c net.Conn) error {
			if err := write("POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"range\":")(c); err != nil {
				return err
			}
			return c.(*net.TCPConn).CloseWrite()
		}, closed: true, want: []int{400}},
	}
	for _, tt := range tests {
		timeout := tt.timeout
		if timeout == 0 {
			timeout = 5 * time.Second
		}
		t.Run(tt.name, func(t *testing.T) {
			r := rawExchange(t, addr, timeout, tt.send)
			checkClean(t, r, tt.closed, tt.want...)
			if tt.detail != "" && !r.closed && !strings.Contains(string(r.body), tt.detail) {
				t.Errorf("the problem does not say %q: %s", tt.detail, r)
			}
			alive(t)
		})
	}

	// An id with a percent-encoded character is the same id (RFC 3986, 6.2.2.2), or refused; it is
	// never another job, nor a failure.
	t.Run("percent-encoded-id", func(t *testing.T) {
		r := rawExchange(t, addr, 5*time.Second, write(getRaw("/v1/reports/%"+strings.ToUpper(strconv.FormatInt(int64(id[0]), 16))+id[1:])))
		checkClean(t, r, false, 200, 303, 400)
		var st gen.JobStatus
		if r.status == http.StatusOK && (json.Unmarshal(r.body, &st) != nil || st.Id.String() != id) {
			t.Errorf("the percent-encoded id answered another job: %s", r)
		}
		alive(t)
	})

	t.Run("slow", func(t *testing.T) {
		// The server's ReadHeaderTimeout is 5 s: a header block trickled in forever is cut off then.
		t.Run("slowloris", func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			r := rawExchange(t, addr, 10*time.Second, func(c net.Conn) error {
				if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
					return err
				}
				for i := 0; ; i++ {
					time.Sleep(500 * time.Millisecond)
					if _, err := fmt.Fprintf(c, "X-Slow-%d: y\r\n", i); err != nil {
						return err
					}
				}
			})
			checkClean(t, r, true, http.StatusRequestTimeout)
			if took := time.Since(began); took < 4*time.Second || took > 8*time.Second {
				t.Errorf("a never-ending header block was cut off after %s, want about 5s", took)
			}
			alive(t)
		})
		// Bodies that stall hold a connection each, not the server: others are answered meanwhile.
		t.Run("stalled-bodies", func(t *testing.T) {
			t.Parallel()
			var conns []net.Conn
			defer func() {
				for _, c := range conns {
					_ = c.Close()
				}
			}()
			for range 50 {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c)
				if _, err := io.WriteString(c, "POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"ra"); err != nil {
					t.Fatal(err)
				}
			}
			for range 3 {
				began := time.Now()
				alive(t)
				if took := time.Since(began); took > 2*time.Second {
					t.Errorf("with 50 stalled bodies, a health check and a POST took %s", took)
				}
				time.Sleep(300 * time.Millisecond)
			}
		})
	})

	for _, l := range strings.Split(in.log.String(), "\n") {
		if strings.Contains(l, `"status":5`) || strings.Contains(strings.ToLower(l), "panic") {
			t.Errorf("the server logged a failure: %s", l)
		}
	}
	if t.Failed() {
		fmt.Fprintf(os.Stderr, "reportd log:\n%s\n", in.log)
	}
}

// trickleChunks sends a chunked POST of total bytes of JSON, step bytes a chunk, every pause, and
// stops when the server stops reading.
func trickleChunks(total, step int, pause time.Duration) func(net.Conn) error {
	return func(c net.Conn) error {
		if _, err := io.WriteString(c, "POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"); err != nil {
			return err
		}
		chunk := `{"range":"2026-Q1","pad":"` + strings.Repeat("x", step)
		for sent := 0; sent < total; sent += len(chunk) {
			if _, err := fmt.Fprintf(c, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
				return err
			}
			chunk = strings.Repeat("x", step)
			time.Sleep(pause)
		}
		_, err := io.WriteString(c, "2\r\n\"}\r\n0\r\n\r\n")
		return err
	}
}

// TestHostileInputWithoutKeyE2E sends broken or endless bodies without a key to a server that has
// keys: each is refused with 401 at once (the body is never waited for), and the server answers a
// client with a key afterwards.
func TestHostileInputWithoutKeyE2E(t *testing.T) {
	t.Parallel()
	in := start(t, nil, reportdproc.Vars(map[string]string{"REPORTD_API_KEYS": "acme:" + e2eAcmeKey}))
	addr := strings.TrimPrefix(in.base, "http://")
	const head = "POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
	tests := []struct {
		name string
		raw  string
	}{
		{"huge-declared-length", head + "Content-Length: 100000000\r\n\r\n{\"range\":"},
		{"body-never-ends", head + "Content-Length: 1000\r\n\r\n{\"range\":"},
		{"bad-chunk", head + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"},
		{"trailing-json", head + "Content-Length: 27\r\n\r\n" + `{"range":"2026-Q1"} {"a":1}`},
		{"duplicate-keys", head + "Content-Length: 37\r\n\r\n" + `{"range":"2026-Q1","range":"2026-Q2"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rawExchange(t, addr, 5*time.Second, write(tt.raw))
			checkClean(t, r, false, http.StatusUnauthorized)
		})
	}
	if res := doAs(t, e2eAcmeKey, http.MethodPost, in.base+"/v1/reports", `{"range":"2026-02"}`); res.status != http.StatusAccepted {
		t.Errorf("POST with the key afterwards = %s, want 202", res)
	}
}
