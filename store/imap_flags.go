package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// isKeyword reports whether a flag is a keyword rather than a system flag.
func isKeyword(f string) bool { return !strings.HasPrefix(f, `\`) }

// addKeywords adds the keywords among flags to the mailbox's list.
func addKeywords(ctx context.Context, tx *sql.Tx, mailboxID int64, current string, flags []string) error {
	known := ParseFlags(current)
	set := make(map[string]bool, len(known))
	for _, k := range known {
		set[strings.ToLower(k)] = true
	}
	added := false
	for _, f := range flags {
		if isKeyword(f) && !set[strings.ToLower(f)] {
			set[strings.ToLower(f)] = true
			known = append(known, f)
			added = true
		}
	}
	if !added {
		return nil
	}
	_, err := tx.ExecContext(ctx, `UPDATE mailboxes SET keywords = ? WHERE id = ?`, FormatFlags(known), mailboxID)
	return err
}

// FlagOp says how StoreFlags changes flags.
type FlagOp int

// Flag operations of STORE.
const (
	FlagsSet FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// applyFlags returns the new flag set; flags compare case-insensitively
// and keep the spelling first stored.
func applyFlags(old []string, op FlagOp, flags []string) []string {
	has := func(list []string, f string) bool {
		for _, x := range list {
			if strings.EqualFold(x, f) {
				return true
			}
		}
		return false
	}
	switch op {
	case FlagsSet:
		var out []string
		for _, f := range flags {
			if !has(out, f) {
				out = append(out, f)
			}
		}
		return out
	case FlagsAdd:
		out := append([]string{}, old...)
		for _, f := range flags {
			if !has(out, f) {
				out = append(out, f)
			}
		}
		return out
	default:
		var out []string
		for _, f := range old {
			if !has(flags, f) {
				out = append(out, f)
			}
		}
		return out
	}
}

// StoreFlags changes the flags of the given messages (UIDs sorted
// ascending; those that no longer exist are skipped) in one transaction.
// It returns the flags of every message found, with Changed set where they
// changed, and the mailbox modseq of the change (0 when nothing changed).
func (s *Store) StoreFlags(ctx context.Context, mailboxID int64, uids []uint32, op FlagOp, flags []string) ([]FlagState, int64, error) {
	return s.storeFlags(ctx, mailboxID, uids, op, flags, -1)
}

// StoreFlagsUnchangedSince is StoreFlags for STORE (UNCHANGEDSINCE since)
// (RFC 7162 §3.1.3): a message whose modseq is above since is left alone
// and returned with Modified set. The test and the change are one
// transaction, so no other session's change can slip between them.
func (s *Store) StoreFlagsUnchangedSince(ctx context.Context, mailboxID int64, uids []uint32, op FlagOp, flags []string, since int64) ([]FlagState, int64, error) {
	return s.storeFlags(ctx, mailboxID, uids, op, flags, max(since, 0))
}

// storeFlags is StoreFlags with an UNCHANGEDSINCE condition (since < 0:
// none). The mailbox modseq is raised in the same transaction as the
// change, so modseqs are unique and increasing per mailbox whichever
// session (or node) writes.
func (s *Store) storeFlags(ctx context.Context, mailboxID int64, uids []uint32, op FlagOp, flags []string, since int64) ([]FlagState, int64, error) {
	if len(uids) == 0 {
		return nil, 0, nil
	}
	var out []FlagState
	var modseq int64
	var userID int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		modseq = 0
		if out, err = readFlagChanges(ctx, tx, mailboxID, uids, op, flags, since); err != nil {
			return err
		}
		changed := 0
		for _, f := range out {
			if f.Changed {
				changed++
			}
		}
		if changed == 0 {
			return nil
		}
		var keywords string
		if err := s.queryRowW(ctx, tx, `UPDATE mailboxes SET modseq = modseq + 1 WHERE id = ? RETURNING modseq, keywords, user_id`, mailboxID).
			Scan(&modseq, &keywords, &userID); err != nil {
			return notFound(err, "mailbox")
		}
		for i := range out {
			if !out[i].Changed {
				continue
			}
			out[i].ModSeq = modseq
			if _, err := s.execW(ctx, tx, `UPDATE mailbox_messages SET flags = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?`,
				FormatFlags(out[i].Flags), modseq, mailboxID, out[i].UID); err != nil {
				return err
			}
		}
		return addKeywords(ctx, tx, mailboxID, keywords, flags)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("mailbox %d: store flags: %w", mailboxID, err)
	}
	if modseq != 0 {
		s.publish(Event{Kind: EventChanged, UserID: userID, MailboxID: mailboxID})
	}
	return out, modseq, nil
}

// readFlagChanges reads the messages among uids and works out their new
// flags; one changed after since (when since >= 0) keeps its flags and
// is marked Modified.
func readFlagChanges(ctx context.Context, tx *sql.Tx, mailboxID int64, uids []uint32, op FlagOp, flags []string, since int64) ([]FlagState, error) {
	rows, err := tx.QueryContext(ctx, `SELECT uid, flags, modseq FROM mailbox_messages WHERE mailbox_id = ? AND uid >= ? AND uid <= ? ORDER BY uid`,
		mailboxID, uids[0], uids[len(uids)-1])
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []FlagState
	next := 0
	for rows.Next() {
		var f FlagState
		var cur string
		if err := rows.Scan(&f.UID, &cur, &f.ModSeq); err != nil {
			return nil, err
		}
		f.Prev = f.ModSeq
		for next < len(uids) && uids[next] < f.UID {
			next++
		}
		if next == len(uids) {
			break
		}
		if uids[next] != f.UID {
			continue
		}
		if since >= 0 && f.ModSeq > since {
			f.Flags, f.Modified = ParseFlags(cur), true
		} else {
			f.Flags = ParseFlags(FormatFlags(applyFlags(ParseFlags(cur), op, flags)))
			f.Changed = FormatFlags(f.Flags) != cur
		}
		out = append(out, f)
	}
	return out, rows.Err()
}
