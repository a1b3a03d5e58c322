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
	PowBits    int
	PowCount   int
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
	path, err := writeInit(o)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s\nnext: bridge user add --config %s --password-file FILE USER@%s\n", path, path, o.Domain)
	return nil
}

// writeInit writes DIR/config.toml (unless it exists), the data dir and a
// self-signed certificate (unless one exists), and returns the config path.
func writeInit(o initOptions) (string, error) {
	o.Domain = strings.ToLower(o.Domain)
	if o.Hostname == "" {
		o.Hostname = "mail." + o.Domain
	}
	if o.Submission == "" {
		o.Submission, o.IMAP, o.Ticket = "127.0.0.1:1587", "127.0.0.1:1143", "127.0.0.1:8443"
	}
	if o.PowBits == 0 && o.PowCount == 0 {
		o.PowBits, o.PowCount = 20, 4
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "data", "tls"), 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(o.Dir, "config.toml")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		var b strings.Builder
		if err := configTemplate.Execute(&b, o); err != nil {
			return "", err
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			return "", err
		}
	}
	cfg, err := config.Load(path)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(cfg.TLS.Cert); errors.Is(err, os.ErrNotExist) {
		if err := selfSigned(cfg.TLS.Cert, cfg.TLS.Key, cfg.Server.Hostname); err != nil {
			return "", fmt.Errorf("tls certificate: %w", err)
		}
	}
	if _, err := loadOrCreateDKIM(cfg.Server.DataDir, cfg.Server.Domains); err != nil {
		return "", err
	}
	return path, nil
}

var configTemplate = template.Must(template.New("config").Parse(`# tollbridge configuration written by 'bridge init'.
# Every key, with its meaning and default: config.toml.example.
# Relative paths are taken from this file's folder.

[server]
hostname = "{{.Hostname}}"
domains  = ["{{.Domain}}"]
data_dir = "data"

[tls]
# Self-signed by 'bridge init'; point these at your own certificate for a
# real domain.
cert = "data/tls/cert.pem"
key  = "data/tls/key.pem"

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
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: host, Organization: []string{"tollbridge self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(800 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{host, "localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		// Clients are asked to trust this certificate as a root (Apple
		// profiles install it as one): limit what its key could vouch for to
		// this host and loopback, should the key ever leak.
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         []string{host, "localhost"},
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
