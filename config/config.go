// Package config reads, defaults and validates tollbridge's TOML
// configuration (docs/rules.md §5).
//
// Every error names the file and the key at fault, for example
// "config.toml: ticket.pow_bits: must be 0..40, got 99", and Load reports all
// of them at once so an admin fixes the file in one go.
package config

import (
	"time"
)

// Config is one bridge's whole configuration. Paths in it are absolute after
// Load: relative paths in the file are taken from the file's folder.
type Config struct {
	// Server names the host and the mail domains the bridge serves.
	Server Server `toml:"server"`
	// TLS names the certificate used by every listener.
	TLS TLS `toml:"tls"`
	// SMTP configures submission (from mail clients) and MX (legacy inbound).
	SMTP SMTP `toml:"smtp"`
	// IMAP configures the mail clients' IMAP listeners.
	IMAP IMAP `toml:"imap"`
	// Ticket configures the HTTPS ticket API and WKD listener.
	Ticket Ticket `toml:"ticket"`
	// Delivery configures the outbox workers and legacy relaying.
	Delivery Delivery `toml:"delivery"`
	// Routes map remote ticketed domains to their base URL, ahead of DNS SRV.
	Routes []Route `toml:"route"`
	// Aliases deliver one local address to one or more local users or
	// other aliases (besides those added with `bridge alias add`).
	Aliases []Alias `toml:"alias"`
	// Allow lists senders trusted by every user of a local domain.
	Allow []Allow `toml:"allow"`
	// Metrics configures the optional Prometheus endpoint.
	Metrics Metrics `toml:"metrics"`
	// DNS configures the resolver every lookup goes to.
	DNS DNS `toml:"dns"`
	// Store says where the bridge keeps what is not in data_dir: metadata
	// in a PostgreSQL database and sealed parts in an S3-compatible bucket,
	// which several bridges of one domain may share.
	Store Store `toml:"store"`

	// File is the path the configuration was read from ("" for defaults).
	File string `toml:"-"`
}

// Server names the host and the mail domains the bridge serves.
type Server struct {
	// Hostname is the bridge's public host name, used in SMTP greetings,
	// Received: fields and the TLS certificate.
	Hostname string `toml:"hostname"`
	// Domains are the mail domains whose users live on this bridge.
	Domains []string `toml:"domains"`
	// DataDir holds the database, encrypted blobs and keys.
	DataDir string `toml:"data_dir"`
	// Postmaster are the local users (or aliases) who receive postmaster@
	// and abuse@ of every local domain (RFC 5321 §4.5.1, RFC 2142).
	Postmaster []string `toml:"postmaster"`
	// CatchAll maps a local domain to the user or alias that receives its
	// mail for unknown local parts: { "example.org" = "alice@example.org" }.
	CatchAll map[string]string `toml:"catch_all"`
	// SubaddressSeparator holds the characters that start a subaddress tag:
	// user+tag@ is delivered to user@ (Postfix's recipient_delimiter).
	// Empty turns subaddresses off.
	SubaddressSeparator string `toml:"subaddress_separator"`
}

// Alias is one [[alias]]: an address delivered to its targets.
type Alias struct {
	// Address is the alias, in a local domain.
	Address string `toml:"address"`
	// Targets are local users or other aliases (at most 8 deep, no loops).
	Targets []string `toml:"targets"`
}

// TLS names the certificate and key shared by every listener.
type TLS struct {
	// Cert is a PEM certificate chain; `bridge init` generates a self-signed
	// one when absent.
	Cert string `toml:"cert"`
	// Key is the PEM private key for Cert.
	Key string `toml:"key"`
}

// SMTP configures the SMTP listeners.
type SMTP struct {
	// Submission is the mail clients' listener (AUTH required, STARTTLS).
	Submission string `toml:"submission"`
	// SubmissionTLS is an optional implicit-TLS submission listener (RFC 8314).
	SubmissionTLS string `toml:"submission_tls"`
	// MX is an optional listener for legacy inbound mail to local domains.
	MX string `toml:"mx"`
	// MaxMessageBytes is the largest message accepted (SIZE).
	MaxMessageBytes int64 `toml:"max_message_bytes"`
	// MaxRecipients is the most RCPT TO commands per message.
	MaxRecipients int `toml:"max_recipients"`
	// Timeout bounds each command and each DATA transfer.
	Timeout Duration `toml:"timeout"`
}

// IMAP configures the IMAP listeners.
type IMAP struct {
	// Listen is the IMAP listener (STARTTLS offered).
	Listen string `toml:"listen"`
	// ListenTLS is an optional implicit-TLS IMAP listener.
	ListenTLS string `toml:"listen_tls"`
}

// Ticket configures the ticket API.
type Ticket struct {
	// Listen is the HTTPS listener for the ticket API and WKD.
	Listen string `toml:"listen"`
	// PowBits is the number of leading zero bits each proof needs.
	PowBits int `toml:"pow_bits"`
	// PowCount is the number of distinct proofs a ticket needs.
	PowCount int `toml:"pow_count"`
	// Worktypes are the worktypes this bridge does as a sender and offers
	// as a server, most preferred first: "pow" (required, every version 1
	// peer needs it) and optionally "equihash", the memory-hard one
	// (docs/protocol.md §3.8.1). A server offers the first of these that a
	// sender lists.
	Worktypes []string `toml:"worktypes"`
	// EquihashN, EquihashK and EquihashCount are the server's equihash
	// parameters: strings of n bits, k rounds (n a multiple of k+1), and
	// the distinct proofs a ticket needs.
	EquihashN     int `toml:"equihash_n"`
	EquihashK     int `toml:"equihash_k"`
	EquihashCount int `toml:"equihash_count"`
	// Expiry is how long a ticket lives, restarted when it becomes valid.
	Expiry Duration `toml:"expiry"`
	// RatePerMinute caps ticket requests per client IP and per sender hash.
	RatePerMinute int `toml:"rate_per_minute"`
	// MaxPendingBytesPerClient bounds the bytes one client (an IPv4
	// address, an IPv6 /64) may have uploaded to tickets not yet completed;
	// it must hold at least two of the largest messages.
	MaxPendingBytesPerClient int64 `toml:"max_pending_bytes_per_client"`
	// MaxPendingBytes bounds the bytes uploaded to tickets not yet
	// completed, from all clients together.
	MaxPendingBytes int64 `toml:"max_pending_bytes"`
	// MinUploadRate is the slowest, in bytes a second, an upload may
	// arrive, averaged over each UploadRateWindow after the first; 0
	// disables the check.
	MinUploadRate int64 `toml:"min_upload_rate"`
	// UploadRateWindow is the window MinUploadRate is averaged over.
	UploadRateWindow Duration `toml:"upload_rate_window"`
}

// Delivery configures the outbox.
type Delivery struct {
	// Workers is the number of concurrent deliveries.
	Workers int `toml:"workers"`
	// RetryFor is how long temporary failures are retried before a bounce.
	RetryFor Duration `toml:"retry_for"`
	// Smarthost is host:port of the relay for legacy domains; empty means
	// direct delivery to the domain's MX.
	Smarthost string `toml:"smarthost"`
	// SmarthostTLS is "starttls" (default), "tls" (implicit) or "none".
	SmarthostTLS string `toml:"smarthost_tls"`
	// SmarthostUsername enables AUTH PLAIN at the smarthost when set.
	SmarthostUsername string `toml:"smarthost_username"`
	// SmarthostPasswordFile holds the smarthost password on its first line.
	SmarthostPasswordFile string `toml:"smarthost_password_file"`
	// SmarthostCA optionally names a PEM certificate or CA to trust for the
	// smarthost instead of the system roots.
	SmarthostCA string `toml:"smarthost_ca"`
}

// Route maps one remote ticketed domain to its ticket API.
type Route struct {
	// Domain is the remote mail domain.
	Domain string `toml:"domain"`
	// URL is the base URL of the domain's ticket API.
	URL string `toml:"url"`
	// CA optionally names a PEM certificate or CA to trust for this route.
	CA string `toml:"ca"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Listen is host:port for plain-HTTP /metrics; empty disables it.
	Listen string `toml:"listen"`
}

// DNS configures name resolution (version 1.1).
type DNS struct {
	// Resolver is host:port of the DNS server that every lookup (SRV, MX,
	// SPF, DKIM, DMARC) goes to; empty means the system's resolver.
	Resolver string `toml:"resolver"`
}

// Duration is a time.Duration written as a Go duration string ("30m").
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.Duration.String()), nil
}
