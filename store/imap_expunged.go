package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// ExpungedAfter returns the UIDs expunged from a mailbox by changes with
// after < modseq <= upTo, in UID order, and whether that list is complete:
// it is not when records of expunges after after were pruned
// (PruneExpunged); the caller then works out what vanished from the UIDs
// that still exist. The records are read before the floor, so a prune
// running meanwhile can only make the answer say incomplete.
func (s *Store) ExpungedAfter(ctx context.Context, mailboxID, after, upTo int64) ([]uint32, bool, error) {
	uids, err := s.ExpungedUIDs(ctx, mailboxID, after, upTo)
	if err != nil {
		return nil, false, err
	}
	var floor int64
	if err := s.queryReadRow(ctx, `SELECT expunged_floor FROM mailboxes WHERE id = ?`, mailboxID).Scan(&floor); err != nil {
		return nil, false, fmt.Errorf("mailbox %d: expunged: %w", mailboxID, notFound(err, "mailbox"))
	}
	return uids, after >= floor, nil
}

// PruneExpunged forgets expunge records older than keep, mailbox by
// mailbox, and returns how many it removed. A mailbox forgets every
// record up to the highest modseq among its old ones and raises its
// expunged_floor to it, in one transaction: the records after the floor
// stay complete, which is what QRESYNC needs (RFC 7162 §3.2.5.2, §4).
// Records made before they had a time get the present one, so they are
// kept for keep from the first prune.
func (s *Store) PruneExpunged(ctx context.Context, keep time.Duration) (int64, error) {
	now := time.Now()
	var removed int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		removed = 0
		if _, err := s.execW(ctx, tx, `UPDATE mailbox_expunged SET at = ? WHERE at = 0`, now.Unix()); err != nil {
			return err
		}
		floors, err := oldExpunges(ctx, tx, now.Add(-keep).Unix())
		if err != nil {
			return err
		}
		for _, f := range floors {
			res, err := s.execW(ctx, tx, `DELETE FROM mailbox_expunged WHERE mailbox_id = ? AND modseq <= ?`, f.mailbox, f.modseq)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			removed += n
			if _, err := s.execW(ctx, tx, `UPDATE mailboxes SET expunged_floor = ? WHERE id = ? AND expunged_floor < ?`,
				f.modseq, f.mailbox, f.modseq); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune expunge records: %w", err)
	}
	return removed, nil
}

type expungeFloor struct{ mailbox, modseq int64 }

// oldExpunges returns, per mailbox, the highest modseq of the expunge
// records made before cutoff.
func oldExpunges(ctx context.Context, tx *sql.Tx, cutoff int64) ([]expungeFloor, error) {
	rows, err := tx.QueryContext(ctx, `SELECT mailbox_id, MAX(modseq) FROM mailbox_expunged WHERE at < ? GROUP BY mailbox_id`, cutoff)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []expungeFloor
	for rows.Next() {
		var f expungeFloor
		if err := rows.Scan(&f.mailbox, &f.modseq); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}
