package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Message sources, stored with each message.
const (
	SourceTicket = "ticket" // arrived over the ticketed protocol
	SourceMX     = "mx"     // legacy SMTP from the internet, sealed on arrival
	SourceLocal  = "local"  // submitted by a user of this bridge to another
	SourceAppend = "append" // saved by the user's mail client (IMAP APPEND)
	SourceDSN    = "dsn"    // a delivery status notification from this bridge
)

// CatalogBlob names a message's encrypted catalog among its blobs, beside
// its part ids: the word the ticketed protocol uses for the catalog's
// upload (protocol.UploadCatalog), which no part id may be.
const CatalogBlob = "catalog"

// NewMessage is a sealed message to store for one local user.
type NewMessage struct {
	UserID   int64
	Header   []byte // the per-recipient header JSON of docs/protocol.md §3.3
	Source   string
	Trace    []byte // trace fields (e.g. "Received: …\r\n") shown in front
	Received time.Time
	// Blobs maps CatalogBlob and each part id to its committed blob.
	Blobs map[string]BlobRef
	// Mailbox files the message at once; "" leaves it unfiled until the
	// owner's key is unlocked and its signature can be checked.
	Mailbox string
	Auth    string // signature verdict when filed at once: pass|fail|none
	// AuthResults are the results of the legacy checks (SPF, DKIM, DMARC;
	// docs/rules.md §4) of MX mail: RFC 8601 resinfo entries, one a line, shown
	// after tollbridge= in the bridge's Authentication-Results field.
	AuthResults string
	Flags       []string // initial flags when filed at once
	// NoWork marks mail that came on a ticket issued valid at once (a
	// trusted sender's signed request): it must be signed (§3.7).
	NoWork bool
}

// Delivered says where a stored message went.
type Delivered struct {
	MessageID int64
	UserID    int64
	MailboxID int64  // 0 when unfiled
	UID       uint32 // 0 when unfiled
}

func (d *Delivered) event() Event {
	kind := EventNewMessage
	if d.MailboxID == 0 {
		kind = EventUnfiled
	}
	return Event{Kind: kind, UserID: d.UserID, MailboxID: d.MailboxID, UID: d.UID}
}

// DeliverMessage stores a sealed message for a user in one transaction.
func (s *Store) DeliverMessage(ctx context.Context, m *NewMessage) (*Delivered, error) {
	var d *Delivered
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		d, err = s.insertMessage(ctx, tx, m)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("deliver to user %d: %w", m.UserID, err)
	}
	s.publish(d.event())
	return d, nil
}

func (s *Store) insertMessage(ctx context.Context, tx *sql.Tx, m *NewMessage) (*Delivered, error) {
	if _, ok := m.Blobs[CatalogBlob]; !ok {
		return nil, fmt.Errorf("message without catalog")
	}
	trace := m.Trace
	if trace == nil {
		trace = []byte{}
	}
	received := m.Received
	if received.IsZero() {
		received = s.now()
	}
	var id int64
	err := s.queryRowW(ctx, tx,
		`INSERT INTO messages (user_id, header, source, trace, auth, received, filed, no_work, auth_results) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?) RETURNING id`,
		m.UserID, m.Header, m.Source, trace, m.Auth, received.Unix(), m.NoWork, m.AuthResults).Scan(&id)
	if err != nil {
		return nil, err
	}
	for _, name := range sortedKeys(m.Blobs) {
		ref := m.Blobs[name]
		if err := s.registerBlob(ctx, tx, ref); err != nil {
			return nil, err
		}
		if _, err := s.execW(ctx, tx, `INSERT INTO message_blobs (message_id, name, blob) VALUES (?, ?, ?)`, id, name, ref.Hash); err != nil {
			return nil, err
		}
	}
	d := &Delivered{MessageID: id, UserID: m.UserID}
	if m.Mailbox != "" {
		if d.MailboxID, d.UID, err = s.fileTx(ctx, tx, id, m.UserID, m.Mailbox, m.Auth, m.Flags); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// fileTx puts a stored message into the user's mailbox with the next UID.
func (s *Store) fileTx(ctx context.Context, tx *sql.Tx, messageID, userID int64, mailbox, auth string, flags []string) (int64, uint32, error) {
	var mboxID int64
	var uid uint32
	var modseq int64
	err := s.queryRowW(ctx, tx,
		`UPDATE mailboxes SET uid_next = uid_next + 1, modseq = modseq + 1
		 WHERE user_id = ? AND name = ? RETURNING id, uid_next - 1, modseq`, userID, mailbox).Scan(&mboxID, &uid, &modseq)
	if err != nil {
		return 0, 0, notFound(err, "mailbox "+mailbox)
	}
	if _, err := s.execW(ctx, tx,
		`INSERT INTO mailbox_messages (mailbox_id, uid, message_id, flags, modseq) VALUES (?, ?, ?, ?, ?)`,
		mboxID, uid, messageID, FormatFlags(flags), modseq); err != nil {
		return 0, 0, err
	}
	if _, err := s.execW(ctx, tx, `UPDATE messages SET filed = 1, auth = ? WHERE id = ?`, auth, messageID); err != nil {
		return 0, 0, err
	}
	return mboxID, uid, nil
}

// FormatFlags stores a flag set as one space-separated, sorted,
// de-duplicated string.
func FormatFlags(flags []string) string {
	set := map[string]bool{}
	for _, f := range flags {
		if f != "" {
			set[f] = true
		}
	}
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// ParseFlags is the inverse of FormatFlags.
func ParseFlags(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, " ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// UnfiledCount is the number of a user's messages waiting to be filed.
func (s *Store) UnfiledCount(ctx context.Context, userID int64) (int, error) {
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages WHERE user_id = ? AND filed = 0`, userID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("unfiled messages of user %d: %w", userID, err)
	}
	return n, nil
}
