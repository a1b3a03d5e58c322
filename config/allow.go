package config

import (
	"fmt"
	"strings"
)

// Allow is one [[allow]]: senders whose signed ticket requests need no
// work for every user of a local domain, as if each user had run `bridge
// user allow` for them.
type Allow struct {
	// Domain is a local domain (one of server.domains).
	Domain string `toml:"domain"`
	// Senders are addresses ("boss@partner.net") or whole domains
	// ("@partner.net": any sender whose server signs for that domain).
	Senders []string `toml:"senders"`
}

// validateAllow checks the [[allow]] entries.
func (cfg *Config) validateAllow(c *checker) {
	for i, a := range cfg.Allow {
		key := fmt.Sprintf("allow[%d]", i)
		if !cfg.IsLocalDomain(a.Domain) {
			c.fail(key+".domain", "%q is not one of server.domains", a.Domain)
		}
		if len(a.Senders) == 0 {
			c.fail(key+".senders", "needs at least one address or @domain")
		}
		for j, s := range a.Senders {
			skey := fmt.Sprintf("%s.senders[%d]", key, j)
			if d, ok := strings.CutPrefix(s, "@"); ok {
				c.domain(skey, d)
				continue
			}
			c.mailAddress(skey, s)
		}
	}
}

// AllowedSenders lists the [[allow]] senders of a local domain: addresses
// and "@domain" entries, as written.
func (cfg *Config) AllowedSenders(domain string) []string {
	var out []string
	for _, a := range cfg.Allow {
		if strings.EqualFold(a.Domain, domain) {
			out = append(out, a.Senders...)
		}
	}
	return out
}
