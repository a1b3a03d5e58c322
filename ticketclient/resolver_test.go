package ticketclient_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"tollbridge/internal/dnstest"
	"tollbridge/pow"
	"tollbridge/ticketclient"
)

// With Options.Resolver, both the SRV record and the address of its
// target come from that resolver (the [dns] resolver setting).
func TestResolverForSRVAndTarget(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	port := uint16(srv.Listener.Addr().(*net.TCPAddr).Port)
	zone := dnstest.New(t)
	zone.SetSRV("_tollbridge._tcp.srv.example", dnstest.SRV{Priority: 0, Weight: 1, Port: port, Target: "tb.srv.example"})
	zone.SetAddr("tb.srv.example", "127.0.0.1")

	c, err := ticketclient.New(nil, pow.NewRegistry(pow.HashWork{}), ticketclient.Options{Resolver: zone.Resolver()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e, err := c.Discover(ctx, "srv.example")
	if err != nil {
		t.Fatal(err)
	}
	// The test server's certificate is not trusted: reaching the TLS
	// handshake shows the host name was resolved through the zone.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.URL+"/", nil)
	resp, err := e.HTTP.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &dnsErr) || !errors.As(err, &certErr) {
		t.Errorf("GET %s: %v, want a certificate error from the test server", e.URL, err)
	}
	if zone.Queries("tb.srv.example") == 0 {
		t.Errorf("the SRV target was not resolved through Options.Resolver")
	}
}
