package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// checker accumulates field errors for one file.
type checker struct {
	file string
	errs Errors
}

func (c *checker) fail(key, format string, args ...any) {
	c.errs = append(c.errs, &FieldError{File: c.file, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) intRange(key string, v, lo, hi int64) {
	if v < lo || v > hi {
		c.fail(key, "must be %d..%d, got %d", lo, hi, v)
	}
}

func (c *checker) duration(key string, d Duration, lo, hi time.Duration) {
	if d.Duration < lo || d.Duration > hi {
		c.fail(key, "must be between %s and %s, got %q", lo, hi, d.Duration)
	}
}

// addr checks an optional host:port listener or peer address.
func (c *checker) addr(key, v string) {
	if v == "" {
		return
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		c.fail(key, "must be host:port, got %q", v)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		c.fail(key, "port must be 0..65535, got %q", port)
	}
	if host == "" {
		c.fail(key, "host is empty in %q (use 0.0.0.0 or [::] to listen everywhere)", v)
	}
}

func (c *checker) domain(key, v string) {
	if !ValidDomain(v) {
		c.fail(key, "not a valid domain name: %q", v)
	}
}

// ValidDomain reports whether s looks like a DNS name of labels of letters,
// digits and hyphens (an IDNA name must be written in its ASCII form).
func ValidDomain(s string) bool {
	if s == "" || len(s) > 253 || strings.HasSuffix(s, ".") {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			ok := r == '-' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
			if !ok {
				return false
			}
		}
	}
	return true
}

// validate checks every key and returns all problems.
func (cfg *Config) validate(file string) Errors {
	c := &checker{file: file}
	cfg.validateServer(c)
	cfg.validateListeners(c)
	cfg.validateTicket(c)
	cfg.validateDelivery(c)
	cfg.validateRoutes(c)
	cfg.validateAddresses(c)
	cfg.validateDNS(c)
	cfg.validateStore(c)
	cfg.validateAllow(c)
	return c.errs
}

func (cfg *Config) validateServer(c *checker) {
	if !ValidDomain(cfg.Server.Hostname) {
		c.fail("server.hostname", "not a valid host name: %q", cfg.Server.Hostname)
	}
	if len(cfg.Server.Domains) == 0 {
		c.fail("server.domains", "at least one mail domain is required")
	}
	seen := map[string]bool{}
	for i, d := range cfg.Server.Domains {
		key := fmt.Sprintf("server.domains[%d]", i)
		c.domain(key, d)
		if seen[strings.ToLower(d)] {
			c.fail(key, "domain %q is listed twice", d)
		}
		seen[strings.ToLower(d)] = true
		cfg.Server.Domains[i] = strings.ToLower(d)
	}
	if cfg.Server.DataDir == "" {
		c.fail("server.data_dir", "must not be empty")
	}
	if cfg.TLS.Cert == "" {
		c.fail("tls.cert", "must not be empty")
	}
	if cfg.TLS.Key == "" {
		c.fail("tls.key", "must not be empty")
	}
}

func (cfg *Config) validateListeners(c *checker) {
	c.addr("smtp.submission", cfg.SMTP.Submission)
	c.addr("smtp.submission_tls", cfg.SMTP.SubmissionTLS)
	c.addr("smtp.mx", cfg.SMTP.MX)
	c.addr("imap.listen", cfg.IMAP.Listen)
	c.addr("imap.listen_tls", cfg.IMAP.ListenTLS)
	c.addr("ticket.listen", cfg.Ticket.Listen)
	c.addr("metrics.listen", cfg.Metrics.Listen)
	c.intRange("smtp.max_message_bytes", cfg.SMTP.MaxMessageBytes, 1024, 1<<40)
	c.intRange("smtp.max_recipients", int64(cfg.SMTP.MaxRecipients), 1, 10000)
	c.duration("smtp.timeout", cfg.SMTP.Timeout, time.Second, 24*time.Hour)
}

// validateWorktypes checks ticket.worktypes and the equihash parameters
// against the bounds of docs/protocol.md §3.8.1 (pow's own, repeated here:
// config depends on nothing).
func (cfg *Config) validateWorktypes(c *checker) {
	t := cfg.Ticket
	seen := map[string]bool{}
	for _, w := range t.Worktypes {
		if w != "pow" && w != "equihash" || seen[w] {
			c.fail("ticket.worktypes", "%q is unknown or named twice (known: \"pow\", \"equihash\")", w)
		}
		seen[w] = true
	}
	if !seen["pow"] {
		c.fail("ticket.worktypes", "must include \"pow\", which every version 1 peer needs, got %q", t.Worktypes)
	}
	c.intRange("ticket.equihash_k", int64(t.EquihashK), 2, 7)
	c.intRange("ticket.equihash_count", int64(t.EquihashCount), 1, 16)
	if k := t.EquihashK; k >= 2 && k <= 7 {
		if n := t.EquihashN; n > 128 || n%(k+1) != 0 || n/(k+1) < 8 || n/(k+1) > 21 {
			c.fail("ticket.equihash_n", "must be at most 128 and a multiple of equihash_k+1 = %d between 8 and 21 times it, got %d", k+1, n)
		}
	}
}

func (cfg *Config) validateTicket(c *checker) {
	c.intRange("ticket.pow_bits", int64(cfg.Ticket.PowBits), 0, 40)
	c.intRange("ticket.pow_count", int64(cfg.Ticket.PowCount), 1, 64)
	cfg.validateWorktypes(c)
	c.duration("ticket.expiry", cfg.Ticket.Expiry, time.Minute, 7*24*time.Hour)
	c.intRange("ticket.rate_per_minute", int64(cfg.Ticket.RatePerMinute), 0, 1_000_000)
	t := cfg.Ticket
	// A client must be able to have the largest message (plus its
	// encryption overhead) pending, and another on its way.
	if least := 2 * cfg.SMTP.MaxMessageBytes; t.MaxPendingBytesPerClient < least || t.MaxPendingBytesPerClient > 1<<50 {
		c.fail("ticket.max_pending_bytes_per_client", "must be at least 2 * smtp.max_message_bytes (%d) and at most 2^50, got %d", least, t.MaxPendingBytesPerClient)
	}
	if t.MaxPendingBytes < t.MaxPendingBytesPerClient || t.MaxPendingBytes > 1<<50 {
		c.fail("ticket.max_pending_bytes", "must be at least ticket.max_pending_bytes_per_client (%d) and at most 2^50, got %d", t.MaxPendingBytesPerClient, t.MaxPendingBytes)
	}
	c.intRange("ticket.min_upload_rate", t.MinUploadRate, 0, 1<<30)
	c.duration("ticket.upload_rate_window", t.UploadRateWindow, time.Second, 10*time.Minute)
}

func (cfg *Config) validateDelivery(c *checker) {
	d := cfg.Delivery
	c.intRange("delivery.workers", int64(d.Workers), 1, 1024)
	c.duration("delivery.retry_for", d.RetryFor, time.Minute, 365*24*time.Hour)
	c.addr("delivery.smarthost", d.Smarthost)
	switch d.SmarthostTLS {
	case "starttls", "tls", "none":
	default:
		c.fail("delivery.smarthost_tls", `must be "starttls", "tls" or "none", got %q`, d.SmarthostTLS)
	}
	if d.SmarthostUsername != "" && d.SmarthostPasswordFile == "" {
		c.fail("delivery.smarthost_password_file", "required when smarthost_username is set")
	}
}

func (cfg *Config) validateRoutes(c *checker) {
	seen := map[string]bool{}
	for i, r := range cfg.Routes {
		key := fmt.Sprintf("route[%d]", i)
		c.domain(key+".domain", r.Domain)
		if seen[strings.ToLower(r.Domain)] {
			c.fail(key+".domain", "domain %q has two routes", r.Domain)
		}
		seen[strings.ToLower(r.Domain)] = true
		if cfg.IsLocalDomain(r.Domain) {
			c.fail(key+".domain", "%q is one of server.domains; a route is for remote domains", r.Domain)
		}
		u, err := url.Parse(r.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			c.fail(key+".url", "must be an https://host[:port] base URL, got %q", r.URL)
		}
	}
}

// validateDNS checks [dns] resolver: a server to send queries to, so a
// port is required and 0 is not one.
func (cfg *Config) validateDNS(c *checker) {
	v := cfg.DNS.Resolver
	if v == "" {
		return
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" {
		c.fail("dns.resolver", `must be host:port (e.g. "127.0.0.1:53" or "[::1]:53"), got %q`, v)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		c.fail("dns.resolver", "port must be 1..65535, got %q", port)
	}
}
