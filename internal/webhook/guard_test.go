package webhook

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestAddressAllowed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1", false},        // loopback
		{"127.255.0.9", false},      // loopback, all of 127/8
		{"::1", false},              // loopback
		{"10.1.2.3", false},         // private
		{"172.16.0.1", false},       // private
		{"172.31.255.254", false},   // private
		{"192.168.1.1", false},      // private
		{"169.254.169.254", false},  // link-local: cloud metadata
		{"fe80::1", false},          // link-local
		{"fc00::1", false},          // unique local
		{"fd12:3456::1", false},     // unique local
		{"224.0.0.1", false},        // multicast
		{"ff02::1", false},          // multicast
		{"0.0.0.0", false},          // unspecified
		{"0.1.2.3", false},          // "this network"
		{"::", false},               // unspecified
		{"100.64.0.1", false},       // carrier-grade NAT
		{"192.0.2.1", false},        // documentation
		{"198.18.0.1", false},       // benchmarking
		{"240.0.0.1", false},        // reserved
		{"255.255.255.255", false},  // broadcast
		{"::ffff:127.0.0.1", false}, // IPv4-mapped loopback
		{"::ffff:10.0.0.1", false},  // IPv4-mapped private
		{"::ffff:169.254.169.254", false},
		{"::ffff:100.64.0.1", false}, // IPv4-mapped carrier-grade NAT: netip's predicates alone miss it
		{"::ffff:192.0.2.1", false},  // IPv4-mapped documentation
		{"64:ff9b::7f00:1", false},   // NAT64 of 127.0.0.1
		{"::ffff:7f00:1", false},     // IPv4-mapped loopback, in hex
		{"::127.0.0.1", false},       // IPv4-compatible (deprecated) loopback
		{"::8.8.8.8", false},         // IPv4-compatible (deprecated), even of a public address
		{"100::1", false},            // discard-only
		{"2001:db8::1", false},       // documentation
		{"8.8.8.8", true},
		{"93.184.215.14", true},
		{"::ffff:8.8.8.8", true}, // IPv4-mapped public
		{"2606:4700::1111", true},
		{"2001:4860:4860::8888", true},
	}
	for _, tt := range tests {
		ip := netip.MustParseAddr(tt.addr)
		if got := AddressAllowed(ip); got != tt.want {
			t.Errorf("AddressAllowed(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	if AddressAllowed(netip.Addr{}) {
		t.Error("AddressAllowed(the zero Addr) = true, want false")
	}
}

// TestAddressClass: a refused address is named by what it is, for "the address is <class>", however
// it is written, and an allowed one has no class.
func TestAddressClass(t *testing.T) {
	t.Parallel()
	tests := []struct{ addr, want string }{
		{"127.0.0.1", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:7f00:1", "loopback"},
		{"::127.0.0.1", "loopback"},
		{"64:ff9b::127.0.0.1", "loopback"},
		{"10.0.0.1", "private"},
		{"::ffff:192.168.0.1", "private"},
		{"fd00::1", "private"},
		{"169.254.169.254", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"0.1.2.3", `in "this network" (0.0.0.0/8)`},
		{"100.64.0.1", "shared address space (carrier-grade NAT)"},
		{"192.0.2.1", "reserved for documentation"},
		{"2001:db8::1", "reserved for documentation"},
		{"198.18.0.1", "reserved for benchmarking"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"64:ff9b::808:808", "NAT64"},
		{"::8.8.8.8", "IPv4-compatible (deprecated)"},
		{"8.8.8.8", ""},
		{"::ffff:8.8.8.8", ""},
		{"2606:4700::1111", ""},
	}
	for _, tt := range tests {
		if got := AddressClass(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("AddressClass(%s) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// TestParseIPv4Host: hosts are read as the WHATWG URL standard (and inet_aton) reads them.
func TestParseIPv4Host(t *testing.T) {
	t.Parallel()
	tests := []struct {
		host string
		want string // "" when it is no IPv4 address
	}{
		{"127.0.0.1", "127.0.0.1"},
		{"127.0.0.1.", "127.0.0.1"},
		{"0x7f000001", "127.0.0.1"},
		{"0X7F000001", "127.0.0.1"},
		{"2130706433", "127.0.0.1"},
		{"0177.0.0.1", "127.0.0.1"},
		{"017700000001", "127.0.0.1"},
		{"127.1", "127.0.0.1"},
		{"127.0.1", "127.0.0.1"},
		{"0x7f.1", "127.0.0.1"},
		{"0x7f.0.0.0x1", "127.0.0.1"},
		{"0", "0.0.0.0"},
		{"0x", "0.0.0.0"},
		{"10.1", "10.0.0.1"},
		{"0xa9fea9fe", "169.254.169.254"},
		{"0x08080808", "8.8.8.8"},
		{"4294967295", "255.255.255.255"},
		{"4294967296", ""},              // over 32 bits
		{"256.0.0.1", ""},               // a part other than the last over 255
		{"127.0.0.256", ""},             // the last part over its byte
		{"127.65536", "127.1.0.0"},      // the last part fills the three bytes left
		{"127.16777216", ""},            // ...and no more
		{"1.2.3.4.5", ""},               // five parts
		{"08.0.0.1", ""},                // 8 is no octal digit
		{"0xg.0.0.1", ""},               // g is no hex digit
		{"1..1", ""},                    // an empty part
		{"", ""},                        // nothing
		{"99999999999999999999999", ""}, // far over 32 bits
	}
	for _, tt := range tests {
		got, ok := parseIPv4Host(tt.host)
		if tt.want == "" {
			if ok {
				t.Errorf("parseIPv4Host(%q) = %s, want no address", tt.host, got)
			}
			continue
		}
		if !ok || got != netip.MustParseAddr(tt.want) {
			t.Errorf("parseIPv4Host(%q) = %s, %v; want %s", tt.host, got, ok, tt.want)
		}
	}
}

func TestCheckCallbackURL(t *testing.T) {
	t.Parallel()
	strict := Policy{}
	insecure := Policy{AllowInsecure: true}
	private := Policy{AllowPrivate: true}
	both := Policy{AllowInsecure: true, AllowPrivate: true}
	tests := []struct {
		name      string
		url       string
		policy    Policy
		ok        bool
		forbidden bool   // the refusal wraps ErrForbiddenAddress
		class     string // the *AddressError's class, if set
		msg       string // the refusal says this, if set
	}{
		{name: "https-public-ip", url: "https://8.8.8.8/hooks/reportd", policy: strict, ok: true},
		{name: "https-public-ipv6", url: "https://[2606:4700::1111]:8443/hook?x=1", policy: strict, ok: true},
		{name: "http-refused", url: "http://8.8.8.8/hook", policy: strict},
		{name: "http-refused-with-private-only", url: "http://8.8.8.8/hook", policy: private},
		{name: "http-allowed-insecure", url: "http://8.8.8.8/hook", policy: insecure, ok: true},
		{name: "ftp-refused", url: "ftp://8.8.8.8/hook", policy: both},
		{name: "javascript-refused", url: "javascript:alert(1)", policy: both},
		{name: "relative-path", url: "/hooks/reportd", policy: both},
		{name: "no-scheme", url: "8.8.8.8/hook", policy: both},
		{name: "scheme-relative", url: "//8.8.8.8/hook", policy: both},
		{name: "no-host", url: "https:///hook", policy: both},
		{name: "opaque", url: "https:8.8.8.8/hook", policy: both},
		{name: "unparseable", url: "https://8.8.8.8/%zz", policy: both},
		{name: "credentials", url: "https://user:secret@8.8.8.8/hook", policy: strict},
		{name: "credentials-even-if-private-allowed", url: "https://user:secret@127.0.0.1/hook", policy: both},
		{name: "user-only", url: "https://user@8.8.8.8/hook", policy: strict},
		{name: "loopback-v4", url: "https://127.0.0.1/", policy: strict, forbidden: true},
		{name: "loopback-v4-port", url: "https://127.0.0.1:8443/x", policy: strict, forbidden: true},
		{name: "loopback-v6", url: "https://[::1]/", policy: strict, forbidden: true},
		{name: "mapped-loopback", url: "https://[::ffff:127.0.0.1]/", policy: strict, forbidden: true},
		{name: "private", url: "https://10.0.0.1/", policy: strict, forbidden: true},
		{name: "metadata", url: "https://169.254.169.254/latest/meta-data", policy: strict, forbidden: true},
		{name: "link-local-zone", url: "https://[fe80::1%25eth0]/", policy: strict, forbidden: true},
		{name: "unspecified", url: "https://0.0.0.0/", policy: strict, forbidden: true},
		{name: "nat64-loopback", url: "https://[64:ff9b::7f00:1]/", policy: strict, forbidden: true},
		// Every spelling of a refused address that browsers, curl or the C library read as it.
		{name: "loopback-hex", url: "https://0x7f000001/x", policy: strict, forbidden: true, class: "loopback"},
		{name: "loopback-hex-upper", url: "https://0X7F000001/x", policy: strict, forbidden: true, class: "loopback"},
		{name: "loopback-decimal", url: "https://2130706433/x", policy: strict, forbidden: true, class: "loopback"},
		{name: "loopback-octal", url: "https://0177.0.0.1/x", policy: strict, forbidden: true, class: "loopback"},
		{name: "loopback-short", url: "https://127.1/x", policy: strict, forbidden: true, class: "loopback"},
		{name: "loopback-mixed", url: "https://0x7f.1/x", policy: strict, forbidden: true, class: "loopback"},
		{name: "loopback-trailing-dot", url: "https://127.0.0.1./x", policy: strict, forbidden: true, class: "loopback"},
		{name: "loopback-port", url: "https://0x7f000001:8443/x", policy: insecure, forbidden: true, class: "loopback"},
		{name: "mapped-loopback-hex", url: "https://[::ffff:7f00:1]/", policy: strict, forbidden: true, class: "loopback"},
		{name: "compatible-loopback", url: "https://[::127.0.0.1]/", policy: strict, forbidden: true, class: "loopback"},
		{name: "private-short", url: "https://10.1/", policy: strict, forbidden: true, class: "private"},
		{name: "metadata-hex", url: "https://0xa9fea9fe/latest/meta-data", policy: strict, forbidden: true, class: "link-local"},
		{name: "unspecified-zero", url: "https://0/", policy: strict, forbidden: true, class: "unspecified"},
		// A host that ends in a number is an address or nothing; only its usual spelling is called.
		{name: "public-hex", url: "https://0x08080808/hook", policy: strict, msg: "write it as 8.8.8.8"},
		{name: "private-allowed-hex", url: "https://0x7f000001/hook", policy: private, msg: "write it as 127.0.0.1"},
		{name: "not-an-address", url: "https://1.2.3.4.5/hook", policy: strict, msg: "ends in a number but is not an IPv4 address"},
		{name: "name-ending-in-number", url: "https://example.123/hook", policy: both, msg: "ends in a number"},
		{name: "part-over-255", url: "https://256.0.0.1/hook", policy: strict, msg: "ends in a number"},
		// localhost is a name: it is refused for what it resolves to (127.0.0.1), not for its spelling.
		{name: "localhost", url: "https://localhost/", policy: strict, forbidden: true},
		{name: "localhost-port", url: "https://localhost:9999/hook", policy: insecure, forbidden: true},
		{name: "private-allowed-loopback", url: "https://127.0.0.1/", policy: private, ok: true},
		{name: "private-allowed-v6", url: "https://[::1]/", policy: private, ok: true},
		{name: "private-allowed-metadata", url: "https://169.254.169.254/latest/meta-data", policy: private, ok: true},
		{name: "private-allowed-localhost", url: "https://localhost/", policy: private, ok: true},
		{name: "dev-http-localhost", url: "http://localhost:8080/hook", policy: both, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckCallbackURL(context.Background(), tt.url, tt.policy, net.DefaultResolver)
			if tt.ok {
				if err != nil {
					t.Errorf("CheckCallbackURL(%q, %+v) = %v, want nil", tt.url, tt.policy, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckCallbackURL(%q, %+v) = nil, want a refusal", tt.url, tt.policy)
			}
			if got := errors.Is(err, ErrForbiddenAddress); got != tt.forbidden {
				t.Errorf("CheckCallbackURL(%q): errors.Is(%v, ErrForbiddenAddress) = %v, want %v", tt.url, err, got, tt.forbidden)
			}
			var ae *AddressError
			if tt.class != "" && (!errors.As(err, &ae) || ae.Class != tt.class || !strings.Contains(err.Error(), "is "+tt.class)) {
				t.Errorf("CheckCallbackURL(%q) = %v, want an *AddressError of class %q that says so", tt.url, err, tt.class)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("CheckCallbackURL(%q) = %v, want it to say %q", tt.url, err, tt.msg)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("CheckCallbackURL(%q) = %v: the refusal echoes the URL's password", tt.url, err)
			}
		})
	}
}

// countingServer is an httptest server on 127.0.0.1 that counts its requests.
func countingServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// guardedClient is a plain client whose connections go through GuardedDialer(p).
func guardedClient(p Policy) *http.Client {
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{Proxy: nil, DialContext: GuardedDialer(p, 2*time.Second).DialContext},
	}
}

// TestGuardedDialer: the check is made on the address actually dialed, after DNS, so a name that
// resolves to loopback (as a rebinding name would at delivery time) is refused like the literal
// address, and the receiver is never reached.
func TestGuardedDialer(t *testing.T) {
	t.Parallel()
	srv, hits := countingServer(t)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	byName := "http://localhost:" + u.Port() + "/hook"
	byIP := srv.URL + "/hook"

	clients := []struct {
		name   string
		client func(Policy) *http.Client
	}{
		{"GuardedDialer", guardedClient},
		{"NewClient", func(p Policy) *http.Client {
			p.AllowInsecure = true // the test server is http; the dialer is what is under test
			return NewClient(p, 5*time.Second)
		}},
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			for _, target := range []string{byIP, byName} {
				before := hits.Load()
				res, err := c.client(Policy{}).Post(target, "application/json", strings.NewReader(`{}`))
				if err == nil {
					_ = res.Body.Close()
					t.Errorf("POST %s through the guard answered %d, want a refused dial", target, res.StatusCode)
				} else if !errors.Is(err, ErrForbiddenAddress) {
					t.Errorf("POST %s through the guard: %v, want an error wrapping ErrForbiddenAddress", target, err)
				}
				if n := hits.Load() - before; n != 0 {
					t.Errorf("POST %s through the guard reached the receiver %d times, want 0", target, n)
				}

				before = hits.Load()
				res, err = c.client(Policy{AllowPrivate: true}).Post(target, "application/json", strings.NewReader(`{}`))
				if err != nil {
					t.Fatalf("POST %s with AllowPrivate: %v", target, err)
				}
				_ = res.Body.Close()
				if res.StatusCode != http.StatusNoContent || hits.Load()-before != 1 {
					t.Errorf("POST %s with AllowPrivate answered %d after %d hits, want 204 after 1", target, res.StatusCode, hits.Load()-before)
				}
			}
		})
	}
}

// TestGuardedDialerDirect dials without HTTP, as anything else given the dialer would.
func TestGuardedDialerDirect(t *testing.T) {
	t.Parallel()
	srv, _ := countingServer(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	_, port, _ := net.SplitHostPort(addr)
	for _, a := range []string{addr, "localhost:" + port, "[::ffff:127.0.0.1]:" + port} {
		conn, err := GuardedDialer(Policy{}, time.Second).DialContext(context.Background(), "tcp", a)
		if err == nil {
			_ = conn.Close()
			t.Errorf("dial %s through the guard succeeded", a)
			continue
		}
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("dial %s through the guard: %v, want ErrForbiddenAddress", a, err)
		}
	}
	conn, err := GuardedDialer(Policy{AllowPrivate: true}, time.Second).DialContext(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s with AllowPrivate: %v", addr, err)
	}
	_ = conn.Close()
}
