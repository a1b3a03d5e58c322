package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// CopyResult says where COPY or MOVE put messages.
type CopyResult struct {
	UIDValidity uint32   // of the destination
	Source      []uint32 // UIDs copied, ascending
	Dest        []uint32 // their new UIDs, in the same order
	ModSeq      int64    // MOVE: the source mailbox's modseq of the expunge
}

// CopyMessages copies (or, with move, moves) the given messages (UIDs
// sorted ascending; missing ones skipped) into another mailbox with new
// UIDs, keeping their flags, in one transaction.
func (s *Store) CopyMessages(ctx context.Context, srcID int64, uids []uint32, dstID int64, move bool) (*CopyResult, error) {
	var res *CopyResult
	var userID int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.queryRowW(ctx, tx, `SELECT user_id FROM mailboxes WHERE id = ?`, srcID).Scan(&userID); err != nil {
			return notFound(err, "mailbox")
		}
		var err error
		res, err = s.copyTx(ctx, tx, srcID, uids, dstID, move)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("copy from mailbox %d to %d: %w", srcID, dstID, err)
	}
	if len(res.Source) > 0 {
		s.publish(Event{Kind: EventNewMessage, UserID: userID, MailboxID: dstID, UID: res.Dest[len(res.Dest)-1]})
		if move {
			s.publish(Event{Kind: EventChanged, UserID: userID, MailboxID: srcID})
		}
	}
	return res, nil
}

type copyRow struct {
	uid       uint32
	messageID int64
	flags     string
}

func (s *Store) copyTx(ctx context.Context, tx *sql.Tx, srcID int64, uids []uint32, dstID int64, move bool) (*CopyResult, error) {
	res := &CopyResult{}
	if err := s.queryRowW(ctx, tx, `SELECT uid_validity FROM mailboxes WHERE id = ?`, dstID).Scan(&res.UIDValidity); err != nil {
		return nil, notFound(err, "destination mailbox")
	}
	if len(uids) == 0 {
		return res, nil
	}
	rows, err := s.queryW(ctx, tx, `SELECT uid, message_id, flags FROM mailbox_messages WHERE mailbox_id = ? AND uid >= ? AND uid <= ? ORDER BY uid`,
		srcID, uids[0], uids[len(uids)-1])
	if err != nil {
		return nil, err
	}
	var found []copyRow
	next := 0
	for rows.Next() {
		var r copyRow
		if err := rows.Scan(&r.uid, &r.messageID, &r.flags); err != nil {
			rows.Close()
			return nil, err
		}
		for next < len(uids) && uids[next] < r.uid {
			next++
		}
		if next == len(uids) {
			break
		}
		if uids[next] == r.uid {
			found = append(found, r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return res, nil
	}
	var first uint32
	var modseq int64
	var keywords string
	if err := s.queryRowW(ctx, tx,
		`UPDATE mailboxes SET uid_next = uid_next + ?, modseq = modseq + 1 WHERE id = ? RETURNING uid_next - ?, modseq, keywords`,
		len(found), dstID, len(found)).Scan(&first, &modseq, &keywords); err != nil {
		return nil, err
	}
	var all []string
	for i, r := range found {
		uid := first + uint32(i)
		if _, err := s.execW(ctx, tx, `INSERT INTO mailbox_messages (mailbox_id, uid, message_id, flags, modseq) VALUES (?, ?, ?, ?, ?)`,
			dstID, uid, r.messageID, r.flags, modseq); err != nil {
			return nil, err
		}
		res.Source = append(res.Source, r.uid)
		res.Dest = append(res.Dest, uid)
		all = append(all, ParseFlags(r.flags)...)
	}
	if err := addKeywords(ctx, tx, dstID, keywords, all); err != nil {
		return nil, err
	}
	if move {
		if res.ModSeq, err = expungeTx(ctx, tx, srcID, res.Source); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// expungeTx removes messages from a mailbox and leaves tombstones.
func expungeTx(ctx context.Context, tx *sql.Tx, mailboxID int64, uids []uint32) (int64, error) {
	var modseq int64
	if err := tx.QueryRowContext(ctx, `UPDATE mailboxes SET modseq = modseq + 1 WHERE id = ? RETURNING modseq`, mailboxID).Scan(&modseq); err != nil {
		return 0, err
	}
	now := time.Now().Unix()
	for _, uid := range uids {
		if _, err := tx.ExecContext(ctx, `DELETE FROM mailbox_messages WHERE mailbox_id = ? AND uid = ?`, mailboxID, uid); err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO mailbox_expunged (mailbox_id, uid, modseq, at) VALUES (?, ?, ?, ?)
			 ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = excluded.modseq, at = excluded.at`, mailboxID, uid, modseq, now); err != nil {
			return 0, err
		}
	}
	return modseq, nil
}

// ExpungeMessages permanently removes the messages flagged \Deleted with
// uid <= maxUID and, when uids is not nil, among uids (sorted ascending).
// It returns the UIDs removed and the modseq of the change.
func (s *Store) ExpungeMessages(ctx context.Context, mailboxID int64, maxUID uint32, uids []uint32) ([]uint32, int64, error) {
	var gone []uint32
	var modseq int64
	var userID int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		gone, modseq = nil, 0
		if err := s.queryRowW(ctx, tx, `SELECT user_id FROM mailboxes WHERE id = ?`, mailboxID).Scan(&userID); err != nil {
			return notFound(err, "mailbox")
		}
		rows, err := s.queryW(ctx, tx,
			`SELECT uid FROM mailbox_messages WHERE mailbox_id = ? AND uid <= ? AND instr(' ' || flags || ' ', ' \Deleted ') > 0 ORDER BY uid`,
			mailboxID, maxUID)
		if err != nil {
			return err
		}
		next := 0
		for rows.Next() {
			var uid uint32
			if err := rows.Scan(&uid); err != nil {
				rows.Close()
				return err
			}
			if uids != nil {
				for next < len(uids) && uids[next] < uid {
					next++
				}
				if next == len(uids) || uids[next] != uid {
					continue
				}
			}
			gone = append(gone, uid)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(gone) == 0 {
			return err
		}
		modseq, err = expungeTx(ctx, tx, mailboxID, gone)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("mailbox %d: expunge: %w", mailboxID, err)
	}
	if len(gone) > 0 {
		s.publish(Event{Kind: EventChanged, UserID: userID, MailboxID: mailboxID})
	}
	return gone, modseq, nil
}
