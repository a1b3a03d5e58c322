package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// MailboxDelim separates the levels of a mailbox name ("Archive/2026").
const MailboxDelim = "/"

// Errors of mailbox management.
var (
	// ErrMailboxHasChildren: a mailbox with inferior names is not deleted.
	ErrMailboxHasChildren = errors.New("mailbox has children")
	// ErrMailboxInbox: INBOX cannot be deleted, nor renamed onto.
	ErrMailboxInbox = errors.New("INBOX cannot be changed this way")
)

// Mailbox is one of a user's mailboxes.
type Mailbox struct {
	ID          int64
	UserID      int64
	Name        string
	SpecialUse  string // RFC 6154 attributes, space-separated; "" for none
	Subscribed  bool   // the name is in the user's subscriptions
	UIDValidity uint32
	UIDNext     uint32
	ModSeq      int64    // raised by every change of the mailbox's contents or flags
	RecentUID   uint32   // messages up to this UID are no longer \Recent
	Keywords    []string // keywords ever set on a message of this mailbox
}

const mailboxColumns = `id, user_id, name, special_use,
	EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = mailboxes.user_id AND s.name = mailboxes.name),
	uid_validity, uid_next, modseq, recent_uid, keywords`

func scanMailbox(row interface{ Scan(...any) error }) (*Mailbox, error) {
	var m Mailbox
	var keywords string
	err := row.Scan(&m.ID, &m.UserID, &m.Name, &m.SpecialUse, &m.Subscribed, &m.UIDValidity,
		&m.UIDNext, &m.ModSeq, &m.RecentUID, &keywords)
	if err != nil {
		return nil, err
	}
	m.Keywords = ParseFlags(keywords)
	return &m, nil
}

// CanonicalMailboxName spells INBOX in capitals whatever the case it was
// given in (RFC 3501 §5.1); other names are case-sensitive.
func CanonicalMailboxName(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	if len(name) > 6 && strings.EqualFold(name[:6], "INBOX"+MailboxDelim) {
		return "INBOX" + name[5:]
	}
	return name
}

// Mailboxes lists a user's mailboxes, by name.
func (s *Store) Mailboxes(ctx context.Context, userID int64) ([]*Mailbox, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+mailboxColumns+` FROM mailboxes WHERE user_id = ? ORDER BY name`, userID)
	if err != nil {
		return nil, fmt.Errorf("mailboxes of user %d: %w", userID, err)
	}
	defer rows.Close()
	var out []*Mailbox
	for rows.Next() {
		m, err := scanMailbox(rows)
		if err != nil {
			return nil, fmt.Errorf("mailboxes of user %d: %w", userID, err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// MailboxByName finds one of a user's mailboxes.
func (s *Store) MailboxByName(ctx context.Context, userID int64, name string) (*Mailbox, error) {
	name = CanonicalMailboxName(name)
	m, err := scanMailbox(s.queryReadRow(ctx,
		`SELECT `+mailboxColumns+` FROM mailboxes WHERE user_id = ? AND name = ?`, userID, name))
	return m, notFound(err, "mailbox "+name)
}

// MailboxByID finds a mailbox by id.
func (s *Store) MailboxByID(ctx context.Context, id int64) (*Mailbox, error) {
	m, err := scanMailbox(s.queryReadRow(ctx, `SELECT `+mailboxColumns+` FROM mailboxes WHERE id = ?`, id))
	return m, notFound(err, fmt.Sprintf("mailbox %d", id))
}

// MailboxBySpecialUse finds the user's first mailbox (by name) that carries
// the special-use attribute use (such as `\Junk`).
func (s *Store) MailboxBySpecialUse(ctx context.Context, userID int64, use string) (*Mailbox, error) {
	m, err := scanMailbox(s.read.QueryRowContext(ctx,
		`SELECT `+mailboxColumns+` FROM mailboxes WHERE user_id = ? AND instr(' ' || special_use || ' ', ?) > 0
		 ORDER BY name LIMIT 1`, userID, " "+use+" "))
	return m, notFound(err, "mailbox "+use)
}

// parentNames returns the names above name: "a/b/c" gives "a", "a/b".
func parentNames(name string) []string {
	var out []string
	for i := 0; i < len(name); i++ {
		if strings.HasPrefix(name[i:], MailboxDelim) && i > 0 {
			out = append(out, name[:i])
		}
	}
	return out
}

// CreateMailbox creates a mailbox, and the mailboxes above it in the
// hierarchy that do not exist yet. It fails with ErrExists when name is
// taken.
func (s *Store) CreateMailbox(ctx context.Context, userID int64, name, specialUse string) (*Mailbox, error) {
	name = CanonicalMailboxName(name)
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.createParents(ctx, tx, userID, name); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM mailboxes WHERE user_id = ? AND name = ?`, userID, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrExists
		}
		var err error
		id, err = s.createMailbox(ctx, tx, userID, name, specialUse)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create mailbox %s: %w", name, err)
	}
	s.publish(Event{Kind: EventMailboxes, UserID: userID, MailboxID: id})
	return s.MailboxByID(ctx, id)
}

func (s *Store) createParents(ctx context.Context, tx *sql.Tx, userID int64, name string) error {
	for _, p := range parentNames(name) {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM mailboxes WHERE user_id = ? AND name = ?`, userID, p).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if _, err := s.createMailbox(ctx, tx, userID, p, ""); err != nil {
				return fmt.Errorf("parent %s: %w", p, err)
			}
		}
	}
	return nil
}

// DeleteMailbox deletes a mailbox and its messages. INBOX and mailboxes
// with inferior names are refused (as Dovecot does: delete the children
// first).
func (s *Store) DeleteMailbox(ctx context.Context, userID int64, name string) error {
	name = CanonicalMailboxName(name)
	if name == "INBOX" {
		return fmt.Errorf("delete mailbox %s: %w", name, ErrMailboxInbox)
	}
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT id FROM mailboxes WHERE user_id = ? AND name = ?`, userID, name).Scan(&id); err != nil {
			return notFound(err, "mailbox")
		}
		var children int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM mailboxes WHERE user_id = ?1 AND substr(name, 1, length(?2)) = ?2`,
			userID, name+MailboxDelim).Scan(&children); err != nil {
			return err
		}
		if children > 0 {
			return ErrMailboxHasChildren
		}
		// The cascade removes its mailbox_messages rows; their trigger
		// removes messages no other mailbox holds.
		_, err := tx.ExecContext(ctx, `DELETE FROM mailboxes WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete mailbox %s: %w", name, err)
	}
	s.publish(Event{Kind: EventMailboxes, UserID: userID, MailboxID: id})
	return nil
}

// RenameMailbox renames a mailbox and every mailbox below it, keeping
// their UIDs and UIDVALIDITY, and creates missing parents of the new name.
// Renaming INBOX moves its messages into a new mailbox and leaves INBOX
// empty (RFC 3501 §6.3.5).
func (s *Store) RenameMailbox(ctx context.Context, userID int64, oldName, newName string) error {
	oldName, newName = CanonicalMailboxName(oldName), CanonicalMailboxName(newName)
	if newName == "INBOX" {
		return fmt.Errorf("rename mailbox %s: %w", oldName, ErrMailboxInbox)
	}
	if newName == oldName || strings.HasPrefix(newName, oldName+MailboxDelim) {
		return fmt.Errorf("rename mailbox %s to %s: %w", oldName, newName, ErrExists)
	}
	var events []Event
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var id int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM mailboxes WHERE user_id = ? AND name = ?`, userID, oldName).Scan(&id); err != nil {
			return notFound(err, "mailbox")
		}
		var taken int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM mailboxes WHERE user_id = ?1 AND (name = ?2 OR substr(name, 1, length(?3)) = ?3)`,
			userID, newName, newName+MailboxDelim).Scan(&taken); err != nil {
			return err
		}
		if taken > 0 {
			return ErrExists
		}
		if err := s.createParents(ctx, tx, userID, newName); err != nil {
			return err
		}
		if oldName == "INBOX" {
			var err error
			events, err = s.renameInbox(ctx, tx, userID, id, newName)
			return err
		}
		// Subscriptions follow their mailboxes, as Dovecot's do; the new
		// names may be subscribed already (from deleted mailboxes): those
		// go first, as UPDATE OR REPLACE would (SQLite's only).
		for _, q := range []string{
			`DELETE FROM subscriptions WHERE user_id = ?3 AND NOT ` + renamedName + ` AND name IN
			 (SELECT ?1 || substr(name, length(?2) + 1) FROM subscriptions WHERE user_id = ?3 AND ` + renamedName + `)`,
			`UPDATE mailboxes SET name = ?1 || substr(name, length(?2) + 1) WHERE user_id = ?3 AND ` + renamedName,
			`UPDATE subscriptions SET name = ?1 || substr(name, length(?2) + 1) WHERE user_id = ?3 AND ` + renamedName,
		} {
			if _, err := tx.ExecContext(ctx, q, newName, oldName, userID, oldName+MailboxDelim); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rename mailbox %s to %s: %w", oldName, newName, err)
	}
	for _, e := range events {
		s.publish(e)
	}
	s.publish(Event{Kind: EventMailboxes, UserID: userID})
	return nil
}

// renameInbox moves every message of INBOX into a new mailbox.
func (s *Store) renameInbox(ctx context.Context, tx *sql.Tx, userID, inboxID int64, newName string) ([]Event, error) {
	newID, err := s.createMailbox(ctx, tx, userID, newName, "")
	if err != nil {
		return nil, err
	}
	uids, err := txUIDs(ctx, tx, inboxID)
	if err != nil {
		return nil, err
	}
	if len(uids) == 0 {
		return nil, nil
	}
	if _, err := s.copyTx(ctx, tx, inboxID, uids, newID, true); err != nil {
		return nil, err
	}
	return []Event{
		{Kind: EventChanged, UserID: userID, MailboxID: inboxID},
		{Kind: EventNewMessage, UserID: userID, MailboxID: newID},
	}, nil
}

func txUIDs(ctx context.Context, tx *sql.Tx, mailboxID int64) ([]uint32, error) {
	rows, err := tx.QueryContext(ctx, `SELECT uid FROM mailbox_messages WHERE mailbox_id = ? ORDER BY uid`, mailboxID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var uids []uint32
	for rows.Next() {
		var uid uint32
		if err := rows.Scan(&uid); err != nil {
			return nil, err
		}
		uids = append(uids, uid)
	}
	return uids, rows.Err()
}

// SetSubscribed subscribes or unsubscribes a name (RFC 3501 §6.3.6,
// §6.3.7). Only an existing mailbox can be subscribed; any subscribed
// name can be unsubscribed, ErrNotFound if it was not subscribed.
func (s *Store) SetSubscribed(ctx context.Context, userID int64, name string, subscribed bool) error {
	name = CanonicalMailboxName(name)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if !subscribed {
			res, err := tx.ExecContext(ctx, `DELETE FROM subscriptions WHERE user_id = ? AND name = ?`, userID, name)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return ErrNotFound
			}
			return nil
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM mailboxes WHERE user_id = ? AND name = ?`, userID, name).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		return subscribeTx(ctx, tx, userID, name)
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", name, err)
	}
	return nil
}

func subscribeTx(ctx context.Context, tx *sql.Tx, userID int64, name string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO subscriptions (user_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING`, userID, name)
	return err
}

// Subscriptions returns a user's subscribed names, by name, whether or
// not a mailbox has them.
func (s *Store) Subscriptions(ctx context.Context, userID int64) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT name FROM subscriptions WHERE user_id = ? ORDER BY name`, userID)
	if err != nil {
		return nil, fmt.Errorf("subscriptions of user %d: %w", userID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("subscriptions of user %d: %w", userID, err)
		}
		out = append(out, name)
	}
	return out, rows.Err()
}

// MailboxCounts are the numbers STATUS reports.
type MailboxCounts struct {
	Messages uint32
	Unseen   uint32
	Deleted  uint32
	Recent   uint32 // messages above the mailbox's RecentUID
	Size     int64  // total RFC822.SIZE of messages whose size is known
}

// renamedName matches the names a RENAME moves: ?2 (the old name) and,
// with ?4 the old name and the delimiter, its inferiors.
const renamedName = `(name = CAST(?2 AS TEXT) OR substr(name, 1, length(CAST(?4 AS TEXT))) = ?4)`

// MailboxCounts counts a mailbox's messages.
func (s *Store) MailboxCounts(ctx context.Context, mailboxID int64) (MailboxCounts, error) {
	var c MailboxCounts
	var unseen, deleted, recent, size sql.NullInt64
	err := s.read.QueryRowContext(ctx,
		`SELECT COUNT(*),
		        SUM(CASE WHEN instr(' ' || mm.flags || ' ', ' \Seen ') = 0 THEN 1 ELSE 0 END),
		        SUM(CASE WHEN instr(' ' || mm.flags || ' ', ' \Deleted ') > 0 THEN 1 ELSE 0 END),
		        SUM(CASE WHEN mm.uid > mb.recent_uid THEN 1 ELSE 0 END),
		        SUM(CASE WHEN m.size > 0 THEN m.size ELSE 0 END)
		 FROM mailboxes mb JOIN mailbox_messages mm ON mm.mailbox_id = mb.id JOIN messages m ON m.id = mm.message_id
		 WHERE mb.id = ?`, mailboxID).Scan(&c.Messages, &unseen, &deleted, &recent, &size)
	if err != nil {
		return c, fmt.Errorf("mailbox %d: counts: %w", mailboxID, err)
	}
	c.Unseen, c.Deleted, c.Recent, c.Size = uint32(unseen.Int64), uint32(deleted.Int64), uint32(recent.Int64), size.Int64
	return c, nil
}
