// Package ticketclient is the sending side of the ticketed protocol
// (docs/protocol.md §3.1–3.3): it finds a domain's ticket API (configured route,
// then DNS SRV), asks for a ticket, does the work the ticket demands,
// uploads a sealed message and completes the delivery, retrying what is
// worth retrying and telling permanent failures from temporary ones.
package ticketclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"tollbridge/internal/tlsprofile"
	"tollbridge/pow"
)

// ErrLegacy means the domain does not speak the ticketed protocol: no
// route and no SRV record. Its mail goes out over SMTP.
var ErrLegacy = errors.New("domain is not ticketed")

// Route is a configured ticket API for one remote domain.
type Route struct {
	Domain string
	URL    string // base URL, https://host[:port]
	CA     string // optional PEM file trusted for this route only
}

// Options tune a Client. The zero value works.
type Options struct {
	// LookupSRV resolves SRV records; Resolver's LookupSRV when nil.
	LookupSRV func(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
	// Resolver resolves the ticket APIs' host names (and SRV records when
	// LookupSRV is nil): the [dns] resolver. nil means net.DefaultResolver.
	Resolver *net.Resolver
	// NoSRV treats every domain without a route as legacy.
	NoSRV bool
	// Attempts is how often one request is tried before its error is
	// returned (429, 5xx, network errors); 0 means 4.
	Attempts int
	// Backoff is the first wait between attempts, doubling; 0 means 1s.
	Backoff time.Duration
	// Workers is the number of cores proof-of-work may use; 0: all.
	Workers int
	// MaxWork refuses challenges whose expected cost exceeds this many
	// hashes (a hostile server could ask for years of work); 0 means 2^34,
	// about ten minutes of two cores.
	MaxWork float64
	// UserAgent is sent with every request.
	UserAgent string
	Logger    *slog.Logger
	// Signer signs a ticket request body with the server key of the
	// sending domain (docs/protocol.md §3.7), returning a detached binary
	// OpenPGP signature. Nil: requests go unsigned and always cost work.
	Signer func(domain string, body []byte) ([]byte, error)
	// Now is the clock for signed requests' created; time.Now when nil.
	Now func() time.Time
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Client talks to remote ticket APIs. It is safe for concurrent use and
// reuses connections per endpoint.
type Client struct {
	opts   Options
	works  *pow.Registry
	routes map[string]*Endpoint
	system *http.Client
	log    *slog.Logger
	dating dating
}

// Endpoint is one remote ticket API.
type Endpoint struct {
	Domain string
	URL    string
	HTTP   *http.Client
	c      *Client
}

// New builds a client for the given routes; works are the worktypes this
// side can do, in order of preference.
func New(routes []Route, works *pow.Registry, opts Options) (*Client, error) {
	if opts.Attempts == 0 {
		opts.Attempts = 4
	}
	if opts.Backoff == 0 {
		opts.Backoff = time.Second
	}
	if opts.LookupSRV == nil {
		r := opts.Resolver
		if r == nil {
			r = net.DefaultResolver
		}
		opts.LookupSRV = r.LookupSRV
	}
	if opts.MaxWork == 0 {
		opts.MaxWork = 1 << 34
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "tollbridge/1"
	}
	c := &Client{opts: opts, works: works, routes: map[string]*Endpoint{}, system: newHTTPClient(nil, opts.Resolver), log: opts.Logger}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	for _, r := range routes {
		hc := c.system
		if r.CA != "" {
			pool, err := loadPool(r.CA)
			if err != nil {
				return nil, fmt.Errorf("route %s: ca: %w", r.Domain, err)
			}
			hc = newHTTPClient(pool, opts.Resolver)
		}
		c.routes[strings.ToLower(r.Domain)] = &Endpoint{Domain: strings.ToLower(r.Domain), URL: strings.TrimRight(r.URL, "/"), HTTP: hc, c: c}
	}
	return c, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate found", file)
	}
	return pool, nil
}

// newHTTPClient makes a client with connection reuse; roots nil means the
// system's roots, resolver nil the system's resolver.
func newHTTPClient(roots *x509.CertPool, resolver *net.Resolver) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second, Resolver: resolver}).DialContext,
		TLSClientConfig:       tlsprofile.Apply(&tls.Config{RootCAs: roots}),
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Transport: tr}
}

// Discover finds the ticket API of domain: a configured route, else the
// DNS SRV record _tollbridge._tcp.DOMAIN, else ErrLegacy. A DNS failure
// other than "no such record" is a temporary error, never legacy: mail
// must not fall back to plaintext because a resolver hiccuped.
func (c *Client) Discover(ctx context.Context, domain string) (*Endpoint, error) {
	domain = strings.ToLower(domain)
	if e, ok := c.routes[domain]; ok {
		return e, nil
	}
	if c.opts.NoSRV {
		return nil, fmt.Errorf("%s: %w", domain, ErrLegacy)
	}
	_, srvs, err := c.opts.LookupSRV(ctx, "tollbridge", "tcp", domain)
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return nil, fmt.Errorf("%s: %w", domain, ErrLegacy)
	}
	if err != nil {
		return nil, &Error{Op: "discover " + domain, Err: err}
	}
	for _, srv := range srvs {
		target := strings.TrimSuffix(srv.Target, ".")
		if target == "" {
			continue // "." means the service is decidedly not available
		}
		u := "https://" + net.JoinHostPort(target, strconv.Itoa(int(srv.Port)))
		return &Endpoint{Domain: domain, URL: u, HTTP: c.system, c: c}, nil
	}
	return nil, fmt.Errorf("%s: %w", domain, ErrLegacy)
}
