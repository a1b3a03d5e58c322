package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Pin is a remote address's key as first seen (trust on first use), and a
// different key offered since, if any.
type Pin struct {
	Address            string
	Fingerprint        string
	Key                []byte
	Pinned             time.Time
	OfferedFingerprint string // "" when no changed key is waiting
	OfferedKey         []byte
	Offered            time.Time
}

// PinnedKey returns the pin for address.
func (s *Store) PinnedKey(ctx context.Context, address string) (*Pin, error) {
	row := s.read.QueryRowContext(ctx,
		`SELECT address, fingerprint, key, pinned, offered_fingerprint, offered_key, offered FROM pinned_keys WHERE address = ?`,
		strings.ToLower(address))
	p, err := scanPin(row)
	return p, notFound(err, "pinned key "+address)
}

func scanPin(row interface{ Scan(...any) error }) (*Pin, error) {
	var p Pin
	var pinned, offered int64
	if err := row.Scan(&p.Address, &p.Fingerprint, &p.Key, &pinned, &p.OfferedFingerprint, &p.OfferedKey, &offered); err != nil {
		return nil, err
	}
	p.Pinned = time.Unix(pinned, 0)
	if offered != 0 {
		p.Offered = time.Unix(offered, 0)
	}
	return &p, nil
}

// PinKey pins key for address if nothing is pinned yet. It returns the pin
// now in force, which differs from the argument when another key was
// pinned first.
func (s *Store) PinKey(ctx context.Context, address, fingerprint string, key []byte) (*Pin, error) {
	address = strings.ToLower(address)
	if p, err := s.PinnedKey(ctx, address); err == nil {
		return p, nil // pinned already: no write
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO pinned_keys (address, fingerprint, key, pinned) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			address, fingerprint, key, s.unix())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pin %s: %w", address, err)
	}
	return s.PinnedKey(ctx, address)
}

// OfferKey records a changed key seen for address, for an admin to accept.
func (s *Store) OfferKey(ctx context.Context, address, fingerprint string, key []byte) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`UPDATE pinned_keys SET offered_fingerprint = ?, offered_key = ?, offered = ? WHERE address = ?`,
			fingerprint, key, s.unix(), strings.ToLower(address))
		if err != nil {
			return fmt.Errorf("offer key %s: %w", address, err)
		}
		return nil
	})
}

// ReplacePin pins key for address in place of the pin whose fingerprint
// is old (a key transition the caller verified); ErrNotFound when the
// pin is no longer old's.
func (s *Store) ReplacePin(ctx context.Context, address, old, fingerprint string, key []byte) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE pinned_keys SET fingerprint = ?, key = ?, pinned = ?, offered_fingerprint = '', offered_key = NULL, offered = 0
			 WHERE address = ? AND fingerprint = ?`, fingerprint, key, s.unix(), strings.ToLower(address), old)
		if err != nil {
			return fmt.Errorf("replace pin %s: %w", address, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("replace pin %s: pin is not %s: %w", address, old, ErrNotFound)
		}
		return nil
	})
}

// AcceptOfferedKey replaces the pinned key of address with the offered one.
func (s *Store) AcceptOfferedKey(ctx context.Context, address string) (*Pin, error) {
	address = strings.ToLower(address)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE pinned_keys SET fingerprint = offered_fingerprint, key = offered_key, pinned = ?,
			        offered_fingerprint = '', offered_key = NULL, offered = 0
			 WHERE address = ? AND offered_fingerprint != ''`, s.unix(), address)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("no changed key waiting: %w", ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("accept key %s: %w", address, err)
	}
	return s.PinnedKey(ctx, address)
}

// Pins lists every pinned key, by address.
func (s *Store) Pins(ctx context.Context) ([]*Pin, error) {
	rows, err := s.read.QueryContext(ctx,
		`SELECT address, fingerprint, key, pinned, offered_fingerprint, offered_key, offered FROM pinned_keys ORDER BY address`)
	if err != nil {
		return nil, fmt.Errorf("pins: %w", err)
	}
	defer rows.Close()
	var ps []*Pin
	for rows.Next() {
		p, err := scanPin(rows)
		if err != nil {
			return nil, fmt.Errorf("pins: %w", err)
		}
		ps = append(ps, p)
	}
	return ps, rows.Err()
}
