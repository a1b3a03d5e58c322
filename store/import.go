package store

import (
	"context"
	"database/sql"
	"fmt"
)

// ImportItem is one message of an import (bridge user import), sealed
// and ready to be filed.
type ImportItem struct {
	// Message is the sealed message; its Flags and Received are kept,
	// Mailbox is ignored.
	Message   *NewMessage
	MailboxID int64
	Size      int64 // RFC822.SIZE
	// Meta returns the encrypted metadata cache for the new message id.
	Meta func(messageID int64) ([]byte, error)
	// Mark identifies the source message (see import_marks); nil: none.
	Mark []byte
}

// ImportMessages files a group of imported messages into their mailboxes
// in one transaction: one fsync for the group, and either every message
// of the group is stored or none is. An item whose Mark is stored already
// (an earlier run of the same import) is skipped. It returns how many
// messages it stored.
func (s *Store) ImportMessages(ctx context.Context, userID int64, items []ImportItem) (int, error) {
	var stored []*Delivered
	err := s.tx(ctx, func(tx *sql.Tx) error {
		stored = stored[:0]
		for _, it := range items {
			d, err := s.importTx(ctx, tx, userID, it)
			if err != nil {
				return err
			}
			if d != nil {
				stored = append(stored, d)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("import for user %d: %w", userID, err)
	}
	for _, d := range stored {
		s.publish(d.event())
	}
	return len(stored), nil
}

// importTx stores one item; nil when its mark says it is stored already.
func (s *Store) importTx(ctx context.Context, tx *sql.Tx, userID int64, it ImportItem) (*Delivered, error) {
	if it.Mark != nil {
		res, err := tx.ExecContext(ctx, `INSERT INTO import_marks (user_id, mark) VALUES (?, ?) ON CONFLICT DO NOTHING`, userID, it.Mark)
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil, nil
		}
	}
	m := *it.Message
	m.UserID, m.Mailbox = userID, ""
	d, err := s.insertMessage(ctx, tx, &m)
	if err != nil {
		return nil, err
	}
	b, err := it.Meta(d.MessageID)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE messages SET meta = ?, size = ? WHERE id = ?`, b, it.Size, d.MessageID); err != nil {
		return nil, err
	}
	if d.UID, err = s.fileIntoTx(ctx, tx, d.MessageID, it.MailboxID, m.Auth, m.Flags); err != nil {
		return nil, err
	}
	d.MailboxID = it.MailboxID
	return d, nil
}

// ImportMarked reports whether a source message with this mark was
// imported already, so a resumed import need not seal it again.
func (s *Store) ImportMarked(ctx context.Context, userID int64, mark []byte) (bool, error) {
	var one int
	err := s.read.QueryRowContext(ctx, `SELECT 1 FROM import_marks WHERE user_id = ? AND mark = ?`, userID, mark).Scan(&one)
	if err == sql.ErrNoRows {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("import marks of user %d: %w", userID, err)
	}
	return true, nil
}
