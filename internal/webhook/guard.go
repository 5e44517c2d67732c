package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrForbiddenAddress is wrapped by the error for a webhook URL, or an address dialed for one, that the
// service must not call: loopback, private, link-local, multicast, unspecified and other special-purpose
// addresses. The error is an *AddressError, which names the address's class.
var ErrForbiddenAddress = errors.New("address not allowed for webhooks")

// AddressError is a refusal of an address webhooks must not be sent to.
type AddressError struct {
	// Addr is the address refused; Class says what it is ("loopback", "private", ...), for "the
	// address is <Class>".
	Addr  netip.Addr
	Class string
}

func (e *AddressError) Error() string {
	if !e.Addr.IsValid() {
		return "the address is " + e.Class
	}
	return fmt.Sprintf("the address %s is %s; webhooks are only sent to public addresses", e.Addr, e.Class)
}

// Unwrap makes every AddressError an ErrForbiddenAddress.
func (e *AddressError) Unwrap() error { return ErrForbiddenAddress }

// specialPrefix is a special-purpose range beyond what netip's predicates cover, and what to call it.
type specialPrefix struct {
	prefix netip.Prefix
	class  string
}

// specialPrefixes are the special-purpose ranges of the IANA registries that netip's predicates do
// not cover, most specific first.
var specialPrefixes = []specialPrefix{
	{netip.MustParsePrefix("0.0.0.0/8"), `in "this network" (0.0.0.0/8)`},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (carrier-grade NAT)"}, // often internal
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved for IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "reserved for documentation"},
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved for benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "reserved for documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "reserved for documentation"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible (deprecated)"},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64"}, // may translate to any IPv4 address
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001:db8::/32"), "reserved for documentation"},
	{netip.MustParsePrefix("fec0::/10"), "site-local (deprecated)"},
}

// embedsIPv4 are the IPv6 ranges whose addresses carry an IPv4 address in their last 32 bits (IPv4-
// mapped addresses are unmapped first): such an address is as refused as the IPv4 address it carries.
var embedsIPv4 = []netip.Prefix{
	netip.MustParsePrefix("::/96"),        // IPv4-compatible
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64
}

// AddressClass says why webhooks must not be sent to ip ("loopback", "private", "link-local", ...), for
// "the address is <class>"; it is "" for a public unicast address, to which they may.
func AddressClass(ip netip.Addr) string {
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	switch {
	case !ip.IsValid():
		return "not an IP address"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsPrivate():
		return "private"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	case ip.IsMulticast():
		return "multicast" // link-local and interface-local multicast included
	}
	for _, p := range embedsIPv4 {
		if p.Contains(ip.WithZone("")) {
			b := ip.As16()
			if c := AddressClass(netip.AddrFrom4([4]byte(b[12:]))); c != "" {
				return c
			}
		}
	}
	for _, p := range specialPrefixes {
		if p.prefix.Contains(ip.WithZone("")) {
			return p.class
		}
	}
	return ""
}

// AddressAllowed reports whether a webhook may be sent to ip: a public unicast address.
func AddressAllowed(ip netip.Addr) bool { return AddressClass(ip) == "" }

// checkAddress is nil for an address webhooks may be sent to, and an *AddressError otherwise.
func checkAddress(ip netip.Addr) error {
	if c := AddressClass(ip); c != "" {
		return &AddressError{Addr: ip, Class: c}
	}
	return nil
}

// Policy is what callback URLs may be.
type Policy struct {
	// AllowInsecure lets http:// URLs through, for local development.
	AllowInsecure bool
	// AllowPrivate lets loopback and private addresses through, for local development and tests.
	AllowPrivate bool
}

// CheckCallbackURL checks a callback URL when a job is submitted, as far as can be known then: an
// absolute https URL (http only if allowed) whose host, by its literal address or by what its name
// resolves to now, is allowed. The address actually dialed is checked again at each delivery
// (GuardedDialer), since DNS can change in between.
func CheckCallbackURL(ctx context.Context, raw string, p Policy, resolver *net.Resolver) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return errors.New("callback_url must be an absolute URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && p.AllowInsecure:
	case u.Scheme == "http":
		return errors.New("callback_url must be https:// (http:// is only accepted when REPORTD_WEBHOOK_ALLOW_INSECURE=true)")
	default:
		return fmt.Errorf("callback_url has scheme %q; it must be https", u.Scheme)
	}
	if u.User != nil {
		return errors.New("callback_url must not carry credentials; authenticate the webhook by its signature")
	}
	host := u.Hostname()
	// Browsers, curl and the C library's resolver read 0x7f000001, 2130706433, 0177.0.0.1 and 127.1 as
	// 127.0.0.1 (the WHATWG URL standard's IPv4 parser, after inet_aton), while Go's resolver would look
	// them up as names, and the check below would pass them. A host that ends in a number is an IPv4
	// address or nothing, and only its usual spelling is delivered to.
	if _, err := netip.ParseAddr(host); err != nil && endsInNumber(host) {
		ip, ok := parseIPv4Host(host)
		if !ok {
			return fmt.Errorf("callback_url host %q ends in a number but is not an IPv4 address", host)
		}
		if err := checkAddress(ip); err != nil && !p.AllowPrivate {
			return fmt.Errorf("callback_url host %s is %s written another way: %w", host, ip, err)
		}
		return fmt.Errorf("callback_url host %s is the IPv4 address %s written another way; write it as %s", host, ip, ip)
	}
	if p.AllowPrivate {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := checkAddress(ip); err != nil {
			return fmt.Errorf("callback_url: %w", err)
		}
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ips, err := resolver.LookupNetIP(lctx, "ip", host)
	if err != nil {
		return nil // unknown now; the delivery's dial decides
	}
	for _, ip := range ips {
		if err := checkAddress(ip); err != nil {
			return fmt.Errorf("callback_url host %s resolves to %s: %w", host, ip, err)
		}
	}
	return nil
}

// GuardedDialer returns a dialer that refuses, at connect time, every address a webhook must not reach:
// it checks the address actually dialed, after DNS, so neither a name resolving to 127.0.0.1 nor a
// DNS rebinding between the submit-time check and the delivery gets through.
func GuardedDialer(p Policy, timeout time.Duration) *net.Dialer {
	d := &net.Dialer{Timeout: timeout}
	if p.AllowPrivate {
		return d
	}
	d.Control = func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("dial %s: %w", address, &AddressError{Class: "not an IP address"})
		}
		if err := checkAddress(ap.Addr()); err != nil {
			return fmt.Errorf("dial %s: %w", address, err)
		}
		return nil
	}
	return d
}

// endsInNumber is the WHATWG URL standard's "ends in a number" check of a host: its last label (after
// dropping one empty label a trailing dot leaves) is all decimal digits, or a 0x hexadecimal number.
// Such a host is parsed as an IPv4 address, and a URL whose host then does not parse is no URL.
func endsInNumber(host string) bool {
	labels := strings.Split(host, ".")
	if labels[len(labels)-1] == "" {
		if len(labels) == 1 {
			return false
		}
		labels = labels[:len(labels)-1]
	}
	last := labels[len(labels)-1]
	if last != "" && strings.Trim(last, "0123456789") == "" {
		return true
	}
	_, ok := parseIPv4Number(last)
	return ok
}

// parseIPv4Host is the WHATWG URL standard's IPv4 parser, which accepts what inet_aton does: one to
// four parts, each decimal, octal (a leading 0) or hexadecimal (0x), the last filling the bytes the
// others leave (127.1 is 127.0.0.1, 2130706433 is too), and one trailing dot.
func parseIPv4Host(host string) (netip.Addr, bool) {
	parts := strings.Split(host, ".")
	if parts[len(parts)-1] == "" && len(parts) > 1 {
		parts = parts[:len(parts)-1]
	}
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint64
	for i, part := range parts {
		n, ok := parseIPv4Number(part)
		if !ok {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if n > 255 {
				return netip.Addr{}, false
			}
			v |= n << (8 * (3 - i))
			continue
		}
		if n >= 1<<(8*(5-len(parts))) {
			return netip.Addr{}, false
		}
		v |= n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// parseIPv4Number parses one part of an IPv4 host as the WHATWG URL standard does: 0x or 0X and
// hexadecimal digits (none means 0), a leading 0 and octal digits, or decimal digits. Values past 2^32
// are reported as 2^32, which every caller refuses.
func parseIPv4Number(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	base := uint64(10)
	switch {
	case len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		s, base = s[2:], 16
	case len(s) >= 2 && s[0] == '0':
		s, base = s[1:], 8
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		d := base // no digit of base, unless it is one of these
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			d = uint64(c - '0')
		case 'a' <= c && c <= 'f':
			d = uint64(c-'a') + 10
		case 'A' <= c && c <= 'F':
			d = uint64(c-'A') + 10
		}
		if d >= base {
			return 0, false
		}
		n = min(n*base+d, 1<<32)
	}
	return n, true
}
