package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Alias is an address delivered to other local addresses (users or
// aliases), as added with `bridge alias add`. Aliases from the config file
// are not stored.
type Alias struct {
	Address     string   // normalised
	AddressHash string   // hash(a) of docs/protocol.md §3.6
	WKDName     string   // "domain/hash", the alias's Web Key Directory name
	Targets     []string // normalised addresses, in the order given
	Created     time.Time
}

// AddAlias stores a new alias. It fails with ErrExists when the address is
// already an alias or a user.
func (s *Store) AddAlias(ctx context.Context, a *Alias) error {
	if len(a.Targets) == 0 {
		return fmt.Errorf("alias %s: no targets", a.Address)
	}
	a.Created = s.now().Truncate(time.Second)
	return s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE address = ?`, a.Address).Scan(&n); err != nil {
			return fmt.Errorf("alias %s: %w", a.Address, err)
		}
		if n > 0 {
			return fmt.Errorf("alias %s: a user has that address: %w", a.Address, ErrExists)
		}
		res, err := tx.ExecContext(ctx,
			`INSERT INTO aliases (address, address_hash, wkd_name, targets, created) VALUES (?, ?, ?, ?, ?)
			 ON CONFLICT DO NOTHING`,
			a.Address, a.AddressHash, a.WKDName, strings.Join(a.Targets, "\n"), a.Created.Unix())
		if err != nil {
			return fmt.Errorf("alias %s: %w", a.Address, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("alias %s: %w", a.Address, ErrExists)
		}
		return nil
	})
}

// RemoveAlias deletes a stored alias; ErrNotFound when there is none.
func (s *Store) RemoveAlias(ctx context.Context, address string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM aliases WHERE address = ?`, address)
		if err != nil {
			return fmt.Errorf("alias %s: %w", address, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("alias %s: %w", address, ErrNotFound)
		}
		return nil
	})
}

const aliasColumns = `address, address_hash, wkd_name, targets, created`

func scanAlias(row interface{ Scan(...any) error }) (*Alias, error) {
	var a Alias
	var targets string
	var created int64
	if err := row.Scan(&a.Address, &a.AddressHash, &a.WKDName, &targets, &created); err != nil {
		return nil, err
	}
	a.Targets = strings.Split(targets, "\n")
	a.Created = time.Unix(created, 0)
	return &a, nil
}

// Aliases lists the stored aliases, by address.
func (s *Store) Aliases(ctx context.Context) ([]*Alias, error) {
	return queryAll(ctx, s.read, "aliases", scanAlias, `SELECT `+aliasColumns+` FROM aliases ORDER BY address`)
}

// AliasByAddress finds a stored alias by normalised address.
func (s *Store) AliasByAddress(ctx context.Context, address string) (*Alias, error) {
	a, err := scanAlias(s.read.QueryRowContext(ctx, `SELECT `+aliasColumns+` FROM aliases WHERE address = ?`, address))
	return a, notFound(err, "alias "+address)
}

// AliasByHash finds a stored alias by address hash.
func (s *Store) AliasByHash(ctx context.Context, hash string) (*Alias, error) {
	a, err := scanAlias(s.read.QueryRowContext(ctx, `SELECT `+aliasColumns+` FROM aliases WHERE address_hash = ?`, hash))
	return a, notFound(err, "alias hash "+hash)
}

// AliasByWKDName finds a stored alias by "domain/hash" WKD name.
func (s *Store) AliasByWKDName(ctx context.Context, name string) (*Alias, error) {
	a, err := scanAlias(s.read.QueryRowContext(ctx, `SELECT `+aliasColumns+` FROM aliases WHERE wkd_name = ?`, name))
	return a, notFound(err, "alias "+name)
}

// SubaddressTTL is how long a subaddress noted by NoteSubaddress is found
// by hash after it was last noted.
const SubaddressTTL = 30 * 24 * time.Hour

// NoteSubaddress remembers that the subaddress address (normalised,
// hashed as hash) was asked for, so a ticket request naming hash finds it;
// rows older than SubaddressTTL are dropped on the way.
func (s *Store) NoteSubaddress(ctx context.Context, hash, address string) error {
	now := s.unix()
	return s.laxTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO subaddresses (address_hash, address, seen) VALUES (?, ?, ?)
			 ON CONFLICT (address_hash) DO UPDATE SET seen = excluded.seen`, hash, address, now); err != nil {
			return fmt.Errorf("subaddress %s: %w", address, err)
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM subaddresses WHERE seen < ?`, now-int64(SubaddressTTL/time.Second))
		return err
	})
}

// SubaddressByHash returns the subaddress noted under hash within
// SubaddressTTL; ErrNotFound if none.
func (s *Store) SubaddressByHash(ctx context.Context, hash string) (string, error) {
	var addr string
	err := s.read.QueryRowContext(ctx, `SELECT address FROM subaddresses WHERE address_hash = ? AND seen >= ?`,
		hash, s.unix()-int64(SubaddressTTL/time.Second)).Scan(&addr)
	return addr, notFound(err, "subaddress hash "+hash)
}

// Directory adapts the store to the lookups of keyring.Resolver: local
// users and stored aliases, by address, hash and WKD name.
type Directory struct{ St *Store }

// IsUser reports whether address (normalised) is a local user.
func (d Directory) IsUser(ctx context.Context, address string) (bool, error) {
	_, err := d.St.UserByAddress(ctx, address)
	return found(err)
}

// AliasTargets returns a stored alias's targets, nil when there is none.
func (d Directory) AliasTargets(ctx context.Context, address string) ([]string, error) {
	a, err := d.St.AliasByAddress(ctx, address)
	if ok, err := found(err); !ok {
		return nil, err
	}
	return a.Targets, nil
}

// AddressByHash returns the address of the local user, stored alias or
// noted subaddress whose hash is hash, "" when there is none.
func (d Directory) AddressByHash(ctx context.Context, hash string) (string, error) {
	if u, err := d.St.UserByHash(ctx, hash); err == nil {
		return u.Address, nil
	} else if !errors.Is(err, ErrNotFound) {
		return "", err
	}
	a, err := d.St.AliasByHash(ctx, hash)
	if err == nil {
		return a.Address, nil
	} else if !errors.Is(err, ErrNotFound) {
		return "", err
	}
	sub, err := d.St.SubaddressByHash(ctx, hash)
	if ok, err := found(err); !ok {
		return "", err
	}
	return sub, nil
}

// AddressByWKDName is AddressByHash for a "domain/hash" WKD name.
func (d Directory) AddressByWKDName(ctx context.Context, name string) (string, error) {
	if u, err := d.St.UserByWKDName(ctx, name); err == nil {
		return u.Address, nil
	} else if !errors.Is(err, ErrNotFound) {
		return "", err
	}
	a, err := d.St.AliasByWKDName(ctx, name)
	if ok, err := found(err); !ok {
		return "", err
	}
	return a.Address, nil
}

// found turns a lookup's error into (exists, error), ErrNotFound being no
// error.
func found(err error) (bool, error) {
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
