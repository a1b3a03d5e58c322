package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"tollbridge/config"
)

// initOptions are what `bridge init` and quickstart write into a config.
type initOptions struct {
	Dir        string
	Domain     string
	Hostname   string
	Submission string
	IMAP       string
	Ticket     string
	MX         string
	// DataDir is server.data_dir; the self-signed certificate goes in its
	// tls folder. Empty means "data" beside the config.
	DataDir string
	// Force replaces an existing config; without it writeInit keeps one.
	Force    bool
	PowBits  int
	PowCount int
	// RatePerMinute caps ticket requests per client and sender; -1 means
	// no limit, 0 the default.
	RatePerMinute int
	Routes        []config.Route
	// Smarthost and SmarthostTLS fill [delivery]; empty means direct MX.
	Smarthost    string
	SmarthostTLS string
}

func runInit(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	o := initOptions{}
	fs.StringVar(&o.Dir, "dir", "", "folder to create the config in")
	fs.StringVar(&o.Domain, "domain", "", "mail domain this bridge serves")
	fs.StringVar(&o.Hostname, "hostname", "", "public host name (default mail.DOMAIN)")
	fs.StringVar(&o.Submission, "submission", defaultSubmission, "smtp.submission: host:port for mail clients' SMTP")
	fs.StringVar(&o.IMAP, "imap", defaultIMAP, "imap.listen: host:port for mail clients' IMAP")
	fs.StringVar(&o.Ticket, "ticket", defaultTicket, "ticket.listen: host:port of the HTTPS ticket API")
	fs.StringVar(&o.MX, "mx", "", "smtp.mx: host:port for legacy inbound SMTP (default: off)")
	fs.StringVar(&o.DataDir, "data-dir", "", "server.data_dir, also holding tls/ (default DIR/data)")
	fs.BoolVar(&o.Force, "force", false, "replace an existing DIR/config.toml")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 || o.Dir == "" || o.Domain == "" {
		return usagef("--dir and --domain are required")
	}
	if !config.ValidDomain(o.Domain) {
		return fmt.Errorf("--domain: not a valid domain name: %q", o.Domain)
	}
	path := filepath.Join(o.Dir, "config.toml")
	if _, err := os.Stat(path); err == nil && !o.Force {
		return fmt.Errorf("%s exists; left as it was (--force replaces it)", path)
	}
	res, err := writeInit(o)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s\n", res.path)
	if res.wroteCert {
		names := res.hostname + ", localhost"
		if strings.EqualFold(res.hostname, "localhost") {
			names = "localhost"
		}
		fmt.Fprintf(e.stdout, "wrote %s (self-signed for %s, 127.0.0.1 and ::1)\n", res.cert, names)
	} else {
		fmt.Fprintf(e.stdout, "kept %s (bridge check says whether it names %s)\n", res.cert, res.hostname)
	}
	fmt.Fprintf(e.stdout, "next: bridge user add --config %s --password-file FILE USER@%s\n", res.path, strings.ToLower(o.Domain))
	return nil
}

// The listeners bridge init writes unless told otherwise (docs/rules.md §5).
const (
	defaultSubmission = "127.0.0.1:1587"
	defaultIMAP       = "127.0.0.1:1143"
	defaultTicket     = "127.0.0.1:8443"
)

// initResult says what writeInit wrote.
type initResult struct {
	path      string // the config file
	wrote     bool   // false: an existing config was kept
	cert      string // the certificate file
	wroteCert bool   // false: an existing certificate was kept
	hostname  string
}

// writeInit writes DIR/config.toml (an existing one only with o.Force),
// the data dir and a self-signed certificate (unless one exists). The
// config is checked before it is written: a bad --imap leaves no file.
func writeInit(o initOptions) (*initResult, error) {
	o.Domain = strings.ToLower(o.Domain)
	if o.Hostname == "" {
		o.Hostname = "mail." + o.Domain
	}
	for _, f := range []struct {
		v   *string
		def string
	}{{&o.Submission, defaultSubmission}, {&o.IMAP, defaultIMAP}, {&o.Ticket, defaultTicket}} {
		if *f.v == "" {
			*f.v = f.def
		}
	}
	if o.PowBits == 0 && o.PowCount == 0 {
		o.PowBits, o.PowCount = 20, 4
	}
	if o.DataDir == "" {
		o.DataDir = "data" // beside the config: the folder moves as one
	} else if abs, err := filepath.Abs(o.DataDir); err == nil {
		o.DataDir = abs // as the admin meant it, not from the config's folder
	}
	if strings.ContainsAny(o.DataDir, "\"\\\n") {
		return nil, fmt.Errorf("--data-dir: %q: quotes, backslashes and newlines are not supported", o.DataDir)
	}
	path := filepath.Join(o.Dir, "config.toml")
	res := &initResult{path: path}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) || o.Force {
		var b strings.Builder
		if err := configTemplate.Execute(&b, o); err != nil {
			return nil, err
		}
		if _, err := config.Parse([]byte(b.String()), path); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(o.Dir, 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			return nil, err
		}
		res.wrote = true
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Server.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("%s: server.data_dir: %w", path, err)
	}
	res.cert, res.hostname = cfg.TLS.Cert, cfg.Server.Hostname
	if _, err := os.Stat(cfg.TLS.Cert); errors.Is(err, os.ErrNotExist) {
		if err := selfSigned(cfg.TLS.Cert, cfg.TLS.Key, cfg.Server.Hostname); err != nil {
			return nil, fmt.Errorf("tls certificate: %w", err)
		}
		res.wroteCert = true
	}
	if _, err := loadOrCreateDKIM(cfg.Server.DataDir, cfg.Server.Domains); err != nil {
		return nil, err
	}
	return res, nil
}

var configTemplate = template.Must(template.New("config").Parse(`# tollbridge configuration written by 'bridge init'.
# Every key, with its meaning and default: config.toml.example.
# Relative paths are taken from this file's folder.

[server]
hostname = "{{.Hostname}}"
domains  = ["{{.Domain}}"]
data_dir = "{{.DataDir}}"

[tls]
# Self-signed by 'bridge init'; point these at your own certificate for a
# real domain.
cert = "{{.DataDir}}/tls/cert.pem"
key  = "{{.DataDir}}/tls/key.pem"

[smtp]
submission = "{{.Submission}}"
mx = "{{.MX}}"
max_message_bytes = 52428800
max_recipients = 100

[imap]
listen = "{{.IMAP}}"

[ticket]
listen = "{{.Ticket}}"
pow_bits = {{.PowBits}}
pow_count = {{.PowCount}}
expiry = "30m"
{{- if .RatePerMinute}}
rate_per_minute = {{if lt .RatePerMinute 0}}0{{else}}{{.RatePerMinute}}{{end}}
{{- end}}

[delivery]
workers = 8
retry_for = "48h"
smarthost = "{{.Smarthost}}"
{{- if .SmarthostTLS}}
smarthost_tls = "{{.SmarthostTLS}}"
{{- end}}
{{range .Routes}}
[[route]]
domain = "{{.Domain}}"
url = "{{.URL}}"
ca = "{{.CA}}"
{{end}}`))

// selfSigned writes a self-signed ECDSA certificate naming host,
// localhost, 127.0.0.1 and ::1. Its lifetime stays under the 825 days
// Apple's clients accept.
func selfSigned(certPath, keyPath, host string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	now := time.Now()
	names := []string{host, "localhost"}
	if strings.EqualFold(host, "localhost") {
		names = names[1:]
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: host, Organization: []string{"tollbridge self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(800 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              names,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		// Clients are asked to trust this certificate as a root (Apple
		// profiles install it as one): limit what its key could vouch for to
		// this host and loopback, should the key ever leak.
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         names,
		PermittedIPRanges: []*net.IPNet{
			{IP: net.IPv4(127, 0, 0, 0), Mask: net.CIDRMask(8, 32)},
			{IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)},
		},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certPath), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
