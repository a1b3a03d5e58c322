package main

import (
	"context"
	"net"
)

// newResolver returns the resolver for every lookup the bridge makes:
// the [dns] resolver server when addr is set, else the system's.
//
// StrictErrors is on in both cases: a SERVFAIL or timeout must come back
// as a temporary error, not be hidden by a partial answer or by an
// NXDOMAIN for a search-list name tried after it, which the outbox would
// take as "the domain does not exist" and bounce at once.
func newResolver(addr string) *net.Resolver {
	if addr == "" {
		return &net.Resolver{StrictErrors: true}
	}
	return &net.Resolver{
		PreferGo:     true,
		StrictErrors: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}
