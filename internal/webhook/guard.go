package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// ErrForbiddenAddress is returned for a webhook URL, or an address dialed for one, that the service must
// not call: loopback, private, link-local, multicast, unspecified and other special-purpose addresses.
var ErrForbiddenAddress = errors.New("address not allowed for webhooks")

// forbiddenPrefixes are special-purpose ranges beyond what netip's predicates cover.
var forbiddenPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT, often internal
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: may translate to any IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
}

// AddressAllowed reports whether a webhook may be sent to ip: a public unicast address.
func AddressAllowed(ip netip.Addr) bool {
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range forbiddenPrefixes {
		if p.Contains(ip) {
			return false
		}
	}
	return true
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
	if p.AllowPrivate {
		return nil
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if !AddressAllowed(ip) {
			return fmt.Errorf("callback_url host %s: %w", host, ErrForbiddenAddress)
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
		if !AddressAllowed(ip) {
			return fmt.Errorf("callback_url host %s resolves to %s: %w", host, ip, ErrForbiddenAddress)
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
			return fmt.Errorf("dial %s: %w", address, ErrForbiddenAddress)
		}
		if !AddressAllowed(ap.Addr()) {
			return fmt.Errorf("dial %s: %w", address, ErrForbiddenAddress)
		}
		return nil
	}
	return d
}
