package keyring

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// ErrAliasLoop is returned when an alias names itself, directly or through
// other aliases, or nests deeper than MaxAliasDepth.
var ErrAliasLoop = errors.New("alias loop")

// MaxAliasDepth bounds how many aliases deep a recipient is expanded.
const MaxAliasDepth = 8

// ReservedLocal is the local part reserved in every domain for the
// server key (docs/protocol.md §3.1.2): no user or alias may take it.
const ReservedLocal = "receipts"

// Directory is what a Resolver looks up in the store: local users and
// the aliases added with `bridge alias add` (package store's Directory).
type Directory interface {
	// IsUser reports whether a normalised address is a local user.
	IsUser(ctx context.Context, address string) (bool, error)
	// AliasTargets returns a stored alias's targets, nil if there is none.
	AliasTargets(ctx context.Context, address string) ([]string, error)
	// AddressByHash returns the user or stored alias with hash(a) = hash,
	// "" if there is none.
	AddressByHash(ctx context.Context, hash string) (string, error)
	// AddressByWKDName returns the user or stored alias with the WKD name
	// "domain/hash", "" if there is none.
	AddressByWKDName(ctx context.Context, name string) (string, error)
}

// Addresses is the configured side of recipient resolution (docs/rules.md §4):
// aliases, catch-alls, the postmaster, the subaddress delimiters.
type Addresses struct {
	// Aliases maps an address to its targets (the config's [[alias]]).
	Aliases map[string][]string
	// CatchAll maps a local domain to the address that gets mail for its
	// unknown local parts.
	CatchAll map[string]string
	// Postmaster receives postmaster@ and abuse@ of every local domain
	// (RFC 5321 §4.5.1, RFC 2142), unless a user or alias has that address.
	Postmaster []string
	// Delimiters are the subaddress delimiter characters ("+"); empty
	// turns subaddresses off.
	Delimiters string
}

// Resolver maps an envelope recipient of a local domain to the local users
// who receive it, as Postfix's virtual_alias_maps and recipient_delimiter
// do. It is the one such function: the MX, submission, the ticket API and
// WKD all use it.
//
// The order, first match wins: a user; a config alias; a stored alias;
// postmaster@ and abuse@; then the same for the address with its
// subaddress tag removed; then the domain's catch-all. An alias's targets
// are resolved the same way, at most MaxAliasDepth deep.
type Resolver struct {
	dir     Directory
	domains []string
	cfg     Addresses
	hashes  map[string]string // hash(a) -> a, for the configured addresses
	wkd     map[string]string // "domain/hash" -> a, likewise
}

// NewResolver checks and normalises cfg for the local domains. Every
// address must be valid and, but for targets, in a local domain; errors
// name the address at fault.
func NewResolver(dir Directory, domains []string, cfg Addresses) (*Resolver, error) {
	r := &Resolver{dir: dir, hashes: map[string]string{}, wkd: map[string]string{}}
	for _, d := range domains {
		n, err := NormalizeAddress("x@" + d)
		if err != nil {
			return nil, fmt.Errorf("domain %q: %w", d, err)
		}
		_, d = SplitAddress(n)
		r.domains = append(r.domains, d)
	}
	var errs []error
	r.cfg.Delimiters = cfg.Delimiters
	r.cfg.Aliases = map[string][]string{}
	for a, ts := range cfg.Aliases {
		addr, err := r.localAddress(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("alias %s: %w", a, err))
			continue
		}
		nts, err := normalizeAll(ts)
		if err != nil {
			errs = append(errs, fmt.Errorf("alias %s: target %w", a, err))
			continue
		}
		r.cfg.Aliases[addr] = nts
		r.note(addr)
	}
	r.cfg.CatchAll = map[string]string{}
	for d, t := range cfg.CatchAll {
		n, err := r.localAddress("x@" + d)
		if err != nil {
			errs = append(errs, fmt.Errorf("catch-all of %s: %w", d, err))
			continue
		}
		_, d = SplitAddress(n)
		nt, err := NormalizeAddress(t)
		if err != nil {
			errs = append(errs, fmt.Errorf("catch-all of %s: target %w", d, err))
			continue
		}
		r.cfg.CatchAll[d] = nt
	}
	pm, err := normalizeAll(cfg.Postmaster)
	if err != nil {
		errs = append(errs, fmt.Errorf("postmaster: %w", err))
	}
	r.cfg.Postmaster = pm
	if len(pm) > 0 {
		for _, d := range r.domains {
			r.note("postmaster@" + d)
			r.note("abuse@" + d)
		}
	}
	return r, errors.Join(errs...)
}

// note indexes a configured address by hash and WKD name.
func (r *Resolver) note(addr string) {
	local, domain := SplitAddress(addr)
	r.hashes[HashNormalized(addr)] = addr
	r.wkd[domain+"/"+WKDHash(local)] = addr
}

// localAddress normalises an address that must be in a local domain and
// must not be reserved.
func (r *Resolver) localAddress(s string) (string, error) {
	addr, err := NormalizeAddress(s)
	if err != nil {
		return "", err
	}
	local, domain := SplitAddress(addr)
	if !r.IsLocal(domain) {
		return "", fmt.Errorf("%s: %s is not a local domain", addr, domain)
	}
	if local == ReservedLocal {
		return "", fmt.Errorf("%s: %q is reserved", addr, ReservedLocal)
	}
	return addr, nil
}

func normalizeAll(as []string) ([]string, error) {
	var out []string
	for _, a := range as {
		n, err := NormalizeAddress(a)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// IsLocal reports whether domain (ASCII, lowercase) is a local domain.
func (r *Resolver) IsLocal(domain string) bool { return slices.Contains(r.domains, domain) }

// ConfigAlias returns the targets of a config alias, nil if none.
func (r *Resolver) ConfigAlias(address string) []string { return r.cfg.Aliases[address] }

// Resolve returns the local users (normalised addresses, each once) who
// receive mail for address. It fails with ErrNoSuchUser when there are
// none, ErrAliasLoop for a loop, ErrBadAddress for a bad address.
func (r *Resolver) Resolve(ctx context.Context, address string) ([]string, error) {
	return r.resolve(ctx, address, true)
}

// ResolveKnown is Resolve without the catch-all: the users of an address
// that exists in its own right (a user, an alias, postmaster, or a
// subaddress of one).
func (r *Resolver) ResolveKnown(ctx context.Context, address string) ([]string, error) {
	return r.resolve(ctx, address, false)
}

func (r *Resolver) resolve(ctx context.Context, address string, catchAll bool) ([]string, error) {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return nil, err
	}
	var out []string
	if err := r.expand(ctx, addr, nil, catchAll, &out); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w", addr, ErrNoSuchUser)
	}
	return out, nil
}

// expand appends the users addr delivers to; path is the chain of aliases
// that led here.
func (r *Resolver) expand(ctx context.Context, addr string, path []string, catchAll bool, out *[]string) error {
	if slices.Contains(path, addr) || len(path) > MaxAliasDepth {
		return fmt.Errorf("%s: %w", addr, ErrAliasLoop)
	}
	user, targets, err := r.lookup(ctx, addr, catchAll)
	if err != nil {
		return err
	}
	if user {
		if !slices.Contains(*out, addr) {
			*out = append(*out, addr)
		}
		return nil
	}
	path = append(path, addr)
	for _, t := range targets {
		// A target is a user or an alias, never a catch-all: an alias
		// naming a user who left must not land in the catch-all.
		if err := r.expand(ctx, t, path, false, out); err != nil {
			return err
		}
	}
	return nil
}

// lookup finds what addr is: a user, or an address with targets, or
// (false, nil) nothing.
func (r *Resolver) lookup(ctx context.Context, addr string, catchAll bool) (bool, []string, error) {
	local, domain := SplitAddress(addr)
	if local == ReservedLocal || !r.IsLocal(domain) {
		return false, nil, nil
	}
	user, ts, err := r.exact(ctx, addr)
	if user || ts != nil || err != nil {
		return user, ts, err
	}
	if base, ok := StripSubaddress(addr, r.cfg.Delimiters); ok {
		if user, ts, err := r.exact(ctx, base); user || ts != nil || err != nil {
			return false, []string{base}, err
		}
	}
	if t, ok := r.cfg.CatchAll[domain]; ok && catchAll {
		return false, []string{t}, nil
	}
	return false, nil, nil
}

// exact looks addr up as it is: user, config alias, stored alias,
// postmaster.
func (r *Resolver) exact(ctx context.Context, addr string) (bool, []string, error) {
	user, err := r.dir.IsUser(ctx, addr)
	if user || err != nil {
		return user, nil, err
	}
	if ts := r.cfg.Aliases[addr]; ts != nil {
		return false, ts, nil
	}
	ts, err := r.dir.AliasTargets(ctx, addr)
	if ts != nil || err != nil {
		return false, ts, err
	}
	if local, _ := SplitAddress(addr); (local == "postmaster" || local == "abuse") && len(r.cfg.Postmaster) > 0 {
		return false, r.cfg.Postmaster, nil
	}
	return false, nil, nil
}

// AddressByHash returns the user, alias, postmaster address or (noted
// by the store after a WKD request) subaddress whose hash(a) is hash, ""
// if there is none. Catch-all addresses cannot be found by hash: a hash
// does not give back its address.
func (r *Resolver) AddressByHash(ctx context.Context, hash string) (string, error) {
	a, err := r.dir.AddressByHash(ctx, hash)
	if a != "" || err != nil {
		return a, err
	}
	return r.hashes[hash], nil
}

// AddressByWKD returns the address a WKD request names: the user, alias or
// postmaster address with that name, else the local part l the request
// carries (its ?l=) when it hashes to the name and is a subaddress (then
// sub is true: only the caller can remember it for a later ticket
// request, which names it by hash). "" if none.
func (r *Resolver) AddressByWKD(ctx context.Context, domain, hash, l string) (addr string, sub bool, err error) {
	a, err := r.dir.AddressByWKDName(ctx, domain+"/"+hash)
	if a != "" || err != nil {
		return a, false, err
	}
	if a := r.wkd[domain+"/"+hash]; a != "" {
		return a, false, nil
	}
	if l == "" || WKDHash(l) != hash {
		return "", false, nil
	}
	addr, err = NormalizeAddress(l + "@" + domain)
	if err != nil {
		return "", false, nil
	}
	if _, ok := StripSubaddress(addr, r.cfg.Delimiters); !ok {
		return "", false, nil
	}
	return addr, true, nil
}

// Check resolves every target of the configured aliases, catch-alls and
// postmaster, and of the stored aliases in extra (address to targets), and
// returns an error for each that reaches no user or loops, naming the
// address. `bridge alias add` and `bridge check` use it; at delivery time
// a target that reaches no user is skipped.
func (r *Resolver) Check(ctx context.Context, extra map[string][]string) error {
	var errs []error
	check := func(what string, targets []string) {
		for _, t := range targets {
			if _, err := r.ResolveKnown(ctx, t); err != nil {
				errs = append(errs, fmt.Errorf("%s: target %w", what, err))
			}
		}
	}
	for _, a := range sortedKeys(r.cfg.Aliases) {
		if user, err := r.dir.IsUser(ctx, a); user || err != nil {
			errs = append(errs, errors.Join(err, fmt.Errorf("alias %s: a user has that address, and a user is never an alias", a)))
		}
		check("alias "+a, r.cfg.Aliases[a])
	}
	for _, a := range sortedKeys(extra) {
		check("alias "+a, extra[a])
	}
	for _, d := range sortedKeys(r.cfg.CatchAll) {
		check("catch-all of "+d, []string{r.cfg.CatchAll[d]})
	}
	check("postmaster", r.cfg.Postmaster)
	return errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
