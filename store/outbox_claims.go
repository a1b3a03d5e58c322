package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// ClaimDue picks up to limit recipients due now, oldest first, skipping the
// ids in busy, and claims them for this node: each one's lease runs for
// Options.Lease and its next attempt moves to the time next(tries) gives,
// in the same transaction, so a crash during the attempt waits for that
// time instead of retrying at once. A recipient whose lease ran out while
// still held (its node died mid-attempt) is due at once, on any node.
//
// On PostgreSQL the rows are locked FOR UPDATE SKIP LOCKED: nodes claiming
// at the same moment get different recipients, and each recipient is
// attempted by one node at a time.
func (s *Store) ClaimDue(ctx context.Context, limit int, busy map[int64]bool, next func(tries int) time.Duration) ([]*OutboxRecipient, error) {
	var out []*OutboxRecipient
	err := s.claimTx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		due, err := s.dueRecipients(ctx, tx, now, limit, busy)
		if err != nil {
			return err
		}
		lease := now.Add(s.lease).Unix()
		for _, r := range due {
			r.Tries++
			r.NextAttempt = now.Add(next(r.Tries)).Truncate(time.Second)
			if _, err := s.execW(ctx, tx, `UPDATE outbox_recipients SET tries = ?, next_attempt = ?, claimed_by = ?, lease_until = ? WHERE id = ?`,
				r.Tries, r.NextAttempt.Unix(), s.node, lease, r.ID); err != nil {
				return err
			}
		}
		out = due
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	return out, nil
}

func (s *Store) dueRecipients(ctx context.Context, tx *sql.Tx, now time.Time, limit int, busy map[int64]bool) ([]*OutboxRecipient, error) {
	lock := ""
	if s.dialect == postgresDialect {
		lock = ` FOR UPDATE SKIP LOCKED`
	}
	rows, err := s.queryW(ctx, tx,
		`SELECT `+recipientColumns+` FROM outbox_recipients
		 WHERE done = 0 AND ((next_attempt <= ?1 AND lease_until = 0) OR (lease_until != 0 AND lease_until <= ?1))
		 ORDER BY next_attempt, id LIMIT ?2`+lock,
		now.Unix(), limit+len(busy))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var due []*OutboxRecipient
	for rows.Next() {
		r, err := scanRecipient(rows)
		if err != nil {
			return nil, err
		}
		if !busy[r.ID] && len(due) < limit {
			due = append(due, r)
		}
	}
	return due, rows.Err()
}

// claimTx runs a claim: on PostgreSQL at READ COMMITTED, where FOR UPDATE
// SKIP LOCKED is the queue it is meant for (SERIALIZABLE would make
// claiming nodes fail each other's transactions).
func (s *Store) claimTx(ctx context.Context, fn func(*sql.Tx) error) error {
	if s.dialect == postgresDialect {
		return s.pgTxIso(ctx, false, sql.LevelReadCommitted, fn)
	}
	return s.laxTx(ctx, fn)
}

// ClaimLease is how long a claim holds unrenewed (Options.Lease); a node
// renews its claims well within it.
func (s *Store) ClaimLease() time.Duration { return s.lease }

// Node is this store's node name (Options.Node).
func (s *Store) Node() string { return s.node }

// RenewClaims extends this node's claims on the recipients ids (attempts
// still running) by another lease.
func (s *Store) RenewClaims(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	args := []any{s.now().Add(s.lease).Unix(), s.node}
	for _, id := range ids {
		args = append(args, id)
	}
	in := strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")
	return s.claimTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`UPDATE outbox_recipients SET lease_until = ? WHERE claimed_by = ? AND lease_until != 0 AND done = 0 AND id IN (`+in+`)`, args...)
		if err != nil {
			return fmt.Errorf("renew outbox claims: %w", err)
		}
		return nil
	})
}

// ReleaseOthersClaims ends every claim held by another node, and makes
// those recipients due now. It is for a store only this process can
// claim from (SQLite under `bridge serve`'s lock on the data directory):
// a claim it did not make was left by a process that died mid-attempt,
// and waiting out its lease would only delay the mail. Like Postfix
// after a restart, the cut-off attempts are retried at once; their try
// was counted when they were claimed. It returns how many it released.
func (s *Store) ReleaseOthersClaims(ctx context.Context) (int64, error) {
	var n int64
	err := s.claimTx(ctx, func(tx *sql.Tx) error {
		res, err := s.execW(ctx, tx,
			`UPDATE outbox_recipients SET lease_until = 0, claimed_by = '', next_attempt = ? WHERE done = 0 AND lease_until != 0 AND claimed_by != ?`,
			s.now().Unix(), s.node)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("release stale outbox claims: %w", err)
	}
	return n, nil
}

// ReleaseClaim ends this node's claim on a recipient whose attempt ended:
// it is due again at its next attempt, on any node.
func (s *Store) ReleaseClaim(ctx context.Context, id int64) error {
	return s.claimTx(ctx, func(tx *sql.Tx) error {
		_, err := s.execW(ctx, tx,
			`UPDATE outbox_recipients SET lease_until = 0, claimed_by = '' WHERE id = ? AND claimed_by = ?`, id, s.node)
		if err != nil {
			return fmt.Errorf("outbox recipient %d: release claim: %w", id, err)
		}
		return nil
	})
}
