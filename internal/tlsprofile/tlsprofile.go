// Package tlsprofile is the bridge's one TLS profile, for every listener
// and every client connection it makes: TLS 1.2 or later and, under TLS
// 1.2, only ECDHE key exchange with an AEAD cipher (AES-GCM or
// ChaCha20-Poly1305). The CBC suites with SHA-1 MACs that Go still offers
// by default are left out (Lucky13-style padding oracles, SHA-1). TLS
// 1.3's suites are all AEAD and are not configurable in Go.
package tlsprofile

import "crypto/tls"

// CipherSuites are the TLS 1.2 suites offered, strongest first.
func CipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	}
}

// Apply sets the profile on c and returns it.
func Apply(c *tls.Config) *tls.Config {
	c.MinVersion = max(c.MinVersion, tls.VersionTLS12)
	c.CipherSuites = CipherSuites()
	return c
}
