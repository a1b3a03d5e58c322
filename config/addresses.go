package config

import (
	"fmt"
	"slices"
	"strings"
)

// maxAliasDepth is how deep aliases may name aliases (keyring.MaxAliasDepth).
const maxAliasDepth = 8

// validateAddresses checks the keys of docs/rules.md §4's addresses: aliases,
// catch-alls, the postmaster and the subaddress separator. Whether targets
// are users is for the store to say (`bridge check`, `bridge alias list`);
// here each address must be an address and an alias must be in a local
// domain and must not loop through the file's other aliases.
func (cfg *Config) validateAddresses(c *checker) {
	if sep := cfg.Server.SubaddressSeparator; strings.ContainsAny(sep, "@\"<>(),;:\\[] \t") || len(sep) > 8 {
		c.fail("server.subaddress_separator", "must be a few characters other than @, quotes, brackets and spaces, got %q", sep)
	}
	for i, a := range cfg.Server.Postmaster {
		c.mailAddress(fmt.Sprintf("server.postmaster[%d]", i), a)
	}
	for d, t := range cfg.Server.CatchAll {
		key := fmt.Sprintf("server.catch_all.%q", d)
		if !cfg.IsLocalDomain(d) {
			c.fail(key, "%q is not one of server.domains", d)
		}
		c.mailAddress(key, t)
	}
	seen := map[string]bool{}
	for i, a := range cfg.Aliases {
		key := fmt.Sprintf("alias[%d]", i)
		addr := strings.ToLower(a.Address)
		if c.mailAddress(key+".address", a.Address) {
			at := strings.LastIndexByte(addr, '@')
			local, domain := addr[:at], addr[at+1:]
			switch {
			case !cfg.IsLocalDomain(domain):
				c.fail(key+".address", "%s: %q is not one of server.domains", a.Address, domain)
			case local == "receipts":
				c.fail(key+".address", "%s: the local part receipts is reserved for the server key", a.Address)
			case seen[addr]:
				c.fail(key+".address", "alias %s is listed twice", a.Address)
			}
		}
		seen[addr] = true
		if len(a.Targets) == 0 {
			c.fail(key+".targets", "alias %s needs at least one target", a.Address)
		}
		for j, t := range a.Targets {
			c.mailAddress(fmt.Sprintf("%s.targets[%d]", key, j), t)
		}
	}
	cfg.checkAliasLoops(c)
}

// mailAddress checks that v looks like local@domain.
func (c *checker) mailAddress(key, v string) bool {
	at := strings.LastIndexByte(v, '@')
	if at <= 0 || strings.ContainsAny(v, " \t<>\"") || !ValidDomain(v[at+1:]) {
		c.fail(key, "not a mail address (local@domain): %q", v)
		return false
	}
	return true
}

// checkAliasLoops follows the file's aliases from each one and reports the
// aliases that come back to themselves or nest too deep.
func (cfg *Config) checkAliasLoops(c *checker) {
	targets := map[string][]string{}
	for _, a := range cfg.Aliases {
		for _, t := range a.Targets {
			targets[strings.ToLower(a.Address)] = append(targets[strings.ToLower(a.Address)], strings.ToLower(t))
		}
	}
	var walk func(addr string, path []string) []string
	walk = func(addr string, path []string) []string {
		if slices.Contains(path, addr) || len(path) > maxAliasDepth {
			return append(path, addr)
		}
		for _, t := range targets[addr] {
			if loop := walk(t, append(path, addr)); loop != nil {
				return loop
			}
		}
		return nil
	}
	for i, a := range cfg.Aliases {
		if loop := walk(strings.ToLower(a.Address), nil); loop != nil {
			c.fail(fmt.Sprintf("alias[%d].targets", i), "alias loop (at most %d deep): %s", maxAliasDepth, strings.Join(loop, " -> "))
		}
	}
}

// IsAlias reports whether address (any case) is an [[alias]] of the file.
func (cfg *Config) IsAlias(address string) bool {
	for _, a := range cfg.Aliases {
		if strings.EqualFold(a.Address, address) {
			return true
		}
	}
	return false
}
