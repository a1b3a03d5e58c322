package main

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// TestListenersOfferOnlyAEADSuites: a TLS 1.2 client offering only CBC
// suites is refused by the ticket API and by SMTP STARTTLS; one offering
// an AEAD suite gets in.
func TestListenersOfferOnlyAEADSuites(t *testing.T) {
	t.Parallel()
	s := startSites(t, t.TempDir(), twoSites(), "", 4, 1, 0)
	b := s.bridges[0]
	cbc := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	}
	aead := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}
	client := func(suites []uint16) *tls.Config {
		return &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: suites, ServerName: "localhost"}
	}
	direct := func(suites []uint16) error {
		d := &net.Dialer{Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", b.addr("ticket"), client(suites))
		if err == nil {
			c.Close()
		}
		return err
	}
	starttls := func(suites []uint16) error {
		c, err := smtp.DialStartTLS(b.addr("submission"), client(suites))
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Hello("client.test") // the handshake happens here

	}
	for name, try := range map[string]func([]uint16) error{"ticket API": direct, "submission STARTTLS": starttls} {
		if err := try(cbc); err == nil {
			t.Errorf("%s: a CBC-only client got in", name)
		}
		if err := try(aead); err != nil {
			t.Errorf("%s: AEAD client refused: %v", name, err)
		}
	}
}
