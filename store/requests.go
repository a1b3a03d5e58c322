package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// FirstSighting records a signed ticket request's digest for window and
// reports whether it is new: false when the same digest was recorded
// before and its window has not passed (a replay, docs/protocol.md §3.7).
func (s *Store) FirstSighting(ctx context.Context, digest string, window time.Duration) (bool, error) {
	now := s.now()
	var fresh bool
	err := s.laxTx(ctx, func(tx *sql.Tx) error {
		res, err := s.execW(ctx, tx,
			`INSERT INTO seen_requests (digest, expires) VALUES (?1, ?2)
			 ON CONFLICT (digest) DO UPDATE SET expires = excluded.expires WHERE seen_requests.expires <= ?3`,
			digest, now.Add(window).Unix(), now.Unix())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		fresh = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("request %s: %w", digest, err)
	}
	return fresh, nil
}

// SweepSeenRequests forgets request digests whose replay window has passed.
func (s *Store) SweepSeenRequests(ctx context.Context) (int64, error) {
	var n int64
	err := s.laxTx(ctx, func(tx *sql.Tx) error {
		res, err := s.execW(ctx, tx, `DELETE FROM seen_requests WHERE expires <= ?`, s.unix())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sweep seen requests: %w", err)
	}
	return n, nil
}
