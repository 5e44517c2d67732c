package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
)

// TestRefusal: the errors at start that no wait mends name the setting to check; the others (Redis
// away, slow, loading, full, failing over) are waited out.
func TestRefusal(t *testing.T) {
	t.Parallel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	for _, tc := range []struct {
		name string
		err  error
		want string // the setting the check names; "" for an error waited out
	}{
		{"wrong-password", errors.New("WRONGPASS invalid username-password pair or user is disabled."), "REDIS_URL's user and password"},
		{"no-password", errors.New("NOAUTH Authentication required."), "REDIS_URL's user and password"},
		{"no-permission", fmt.Errorf("reach queue reports: %w", errors.New("NOPERM this user has no permissions to run the 'get' command")), "REDIS_URL's user and password"},
		{"password-to-redis-5", errors.New("ERR Client sent AUTH, but no password is set: AUTH <password> called without any password configured for the default user"), "REDIS_URL's user and password"},
		{"database-out-of-range", errors.New("ERR DB index is out of range"), "REDIS_URL's database number"},
		{"database-on-a-cluster-node", errors.New("ERR SELECT is not allowed in cluster mode"), "REDIS_URL: it names a Redis Cluster node"},
		{"cluster-of-one-redis", errors.New("ERR This instance has cluster support disabled"), "REDIS_URL: it names a Redis that is not in a cluster"},
		{"unknown-authority", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, "REDIS_URL's scheme"},
		{"not-tls", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, "REDIS_URL's scheme"},
		{"connection-refused", refused, ""},
		{"timeout", context.DeadlineExceeded, ""},
		{"closed", io.EOF, ""},
		{"loading", errors.New("LOADING Redis is loading the dataset in memory"), ""},
		{"too-many-clients", errors.New("ERR max number of clients reached"), ""},
		{"master-down", errors.New("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), ""},
		{"cluster-down", errors.New("CLUSTERDOWN The cluster is down"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := refusal(tc.err, urlSettings)
			if tc.want == "" && got != "" || tc.want != "" && (len(got) < len(tc.want) || got[:len(tc.want)] != tc.want) {
				t.Errorf("refusal(%q) = %q, want it to start %q", tc.err, got, tc.want)
			}
		})
	}
}
