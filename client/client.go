package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/reportd/reportd/gen"
)

// DefaultUserAgent is the User-Agent a Client sends unless WithUserAgent says otherwise.
const DefaultUserAgent = "reportd-go-client/1"

// defaultTimeout bounds one HTTP exchange of the default http.Client. It is above the longest hold the
// server grants (60 s) so that a long poll is never cut short by it.
const defaultTimeout = 90 * time.Second

// maxBody is the most a Client reads of one JSON answer; a year's report is a few tens of KiB.
const maxBody = 32 << 20

// Client talks to one reportd service. It is safe for concurrent use.
type Client struct {
	base        *url.URL
	api         *gen.ClientWithResponses
	http        *http.Client
	userAgent   string
	apiKey      string
	maxHold     time.Duration // the longest hold Wait asks for
	maxRateWait time.Duration // the longest Create waits out 429s
	// progressPolling has Wait read again at once after a held read (WithProgressPolling).
	progressPolling bool
	now             func() time.Time                                 // reads the HTTP-dates of Retry-After
	sleep           func(ctx context.Context, d time.Duration) error // waits between polls; tests replace both
}

// Option configures a Client made by New.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests with a copy of hc (its transport, timeout, jar...).
// The copy's CheckRedirect is replaced by one that never follows: the 303 that says a job is done must
// be seen, not followed. A Timeout below a minute also shortens the holds Wait asks for, so that an
// answer the server holds back is not cut off.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.http = hc
		}
	}
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// WithAPIKey sends "Authorization: Bearer key" with every request: the key of one of the clients the
// service knows (REPORTD_API_KEYS). A service that runs open, with no keys, ignores it.
func WithAPIKey(key string) Option {
	return func(c *Client) { c.apiKey = key }
}

// WithMaxHold caps how long Wait asks the service to hold each status read (Prefer: wait). Long holds
// (the default: 30 s, or up to 60 s within a deadline) see a job's end at once for the fewest requests,
// but show no progress meanwhile; a short one lets a progress display see the job advance at the pace
// of Retry-After. Zero turns holding off.
func WithMaxHold(d time.Duration) Option {
	return func(c *Client) { c.maxHold = max(d, 0) }
}

// WithProgressPolling makes Wait read a job's status about every hold (whole seconds, at least one),
// for a progress display: each read is held at most hold (Prefer: wait), and the next follows at once
// instead of after the Retry-After, which for a running job is the estimated time it still needs. A
// display watching one job costs one request a hold; a plain poller should leave this off.
func WithProgressPolling(hold time.Duration) Option {
	return func(c *Client) { c.maxHold, c.progressPolling = max(hold, time.Second), true }
}

// WithMaxRateLimitWait bounds how long, in all, Create waits out a service that refuses a submission
// with 429 Too Many Requests before it submits it again (a minute by default). Zero makes Create
// return the first 429.
func WithMaxRateLimitWait(d time.Duration) Option {
	return func(c *Client) { c.maxRateWait = max(d, 0) }
}

// defaultMaxRateWait is how long Create waits out 429s by default.
const defaultMaxRateWait = time.Minute

// New returns a Client of the reportd service at baseURL (such as "http://localhost:8080").
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http://host[:port] or https://host[:port]", baseURL)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	c := &Client{base: u, userAgent: DefaultUserAgent, maxHold: maxHold, maxRateWait: defaultMaxRateWait,
		now: time.Now, sleep: sleep, http: defaultHTTPClient()}
	for _, o := range opts {
		o(c)
	}
	hc := *c.http
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.http = &hc
	c.api, err = gen.NewClientWithResponses(u.String(), gen.WithHTTPClient(c.http), gen.WithRequestEditorFn(c.edit))
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return c, nil
}

// defaultHTTPClient keeps enough idle connections per host for a few dozen concurrent waiters (the
// standard transport keeps two, and reopens connections under load).
func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: t, Timeout: defaultTimeout}
}

// StatusURL is the status URL of job id at this Client's service.
func (c *Client) StatusURL(id string) string {
	return c.base.JoinPath("v1", "reports", id).String()
}

// edit adds what every request carries.
func (c *Client) edit(_ context.Context, req *http.Request) error {
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	return nil
}

// get builds a GET of ref, a link the service gave (relative to the base URL, or absolute).
func (c *Client) get(ctx context.Context, ref *url.URL, accept string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.ResolveReference(ref).String(), nil)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return req, c.edit(ctx, req)
}

// accept is a request editor that asks for one media type.
func accept(media string) gen.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set("Accept", media)
		return nil
	}
}

// exchange finishes a request made with the generated client or c.http: it reads the whole answer (up
// to maxBody) and closes it. A failure after ctx ended is ctx's error, so that callers can tell a
// deadline from a broken connection.
func exchange(ctx context.Context, resp *http.Response, err error) (*http.Response, []byte, error) {
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, fmt.Errorf("client: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, fmt.Errorf("client: read answer to %s %s: %w", resp.Request.Method, resp.Request.URL, err)
	}
	return resp, body, nil
}

// parseID checks that id is a job id (a UUID) before it goes into a URL.
func parseID(id string) (gen.JobID, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return u, fmt.Errorf("client: %q is not a job id (a UUID)", id)
	}
	return u, nil
}

// location is the Location of resp, resolved against the request it answers.
func location(resp *http.Response) (*url.URL, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, fmt.Errorf("client: %s %s answered %s without a Location", resp.Request.Method, resp.Request.URL, resp.Status)
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s answered %s with a bad Location %q: %w", resp.Request.Method, resp.Request.URL, resp.Status, loc, err)
	}
	return u, nil
}

// jobIDOf is the job id in a status or result URL (/v1/reports/{id}[/result]), or "".
func jobIDOf(u *url.URL) string {
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	for i := len(segs) - 1; i > 0; i-- {
		if segs[i-1] == "reports" {
			if _, err := uuid.Parse(segs[i]); err == nil {
				return segs[i]
			}
		}
	}
	return ""
}
