package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// MailboxState is what a session compares to see whether a mailbox changed.
type MailboxState struct {
	ModSeq   int64
	UIDNext  uint32
	Keywords []string
	// ExpungedFloor: expunges with a modseq up to this one may have been
	// forgotten (PruneExpunged); those after it are all recorded.
	ExpungedFloor int64
}

// MailboxState reads a mailbox's change counter, next UID and keywords. A
// deleted mailbox is ErrNotFound.
func (s *Store) MailboxState(ctx context.Context, mailboxID int64) (MailboxState, error) {
	var st MailboxState
	var keywords string
	err := s.queryReadRow(ctx, `SELECT modseq, uid_next, keywords, expunged_floor FROM mailboxes WHERE id = ?`, mailboxID).
		Scan(&st.ModSeq, &st.UIDNext, &keywords, &st.ExpungedFloor)
	st.Keywords = ParseFlags(keywords)
	return st, notFound(err, fmt.Sprintf("mailbox %d", mailboxID))
}

// MailboxUIDs returns the UIDs of a mailbox's messages with
// after < uid < before (before 0: no upper bound), in order.
func (s *Store) MailboxUIDs(ctx context.Context, mailboxID int64, after, before uint32) ([]uint32, error) {
	q := `SELECT uid FROM mailbox_messages WHERE mailbox_id = ? AND uid > ? ORDER BY uid`
	args := []any{mailboxID, after}
	if before > 0 {
		q = `SELECT uid FROM mailbox_messages WHERE mailbox_id = ? AND uid > ? AND uid < ? ORDER BY uid`
		args = append(args, before)
	}
	rows, err := s.queryRead(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("mailbox %d: uids: %w", mailboxID, err)
	}
	defer rows.Close()
	var uids []uint32
	for rows.Next() {
		var uid uint32
		if err := rows.Scan(&uid); err != nil {
			return nil, fmt.Errorf("mailbox %d: uids: %w", mailboxID, err)
		}
		uids = append(uids, uid)
	}
	return uids, rows.Err()
}

// ExpungedUIDs returns the UIDs expunged from a mailbox by changes with
// after < modseq <= upTo, in UID order.
func (s *Store) ExpungedUIDs(ctx context.Context, mailboxID, after, upTo int64) ([]uint32, error) {
	rows, err := s.queryRead(ctx,
		`SELECT uid FROM mailbox_expunged WHERE mailbox_id = ? AND modseq > ? AND modseq <= ? ORDER BY uid`, mailboxID, after, upTo)
	if err != nil {
		return nil, fmt.Errorf("mailbox %d: expunged: %w", mailboxID, err)
	}
	defer rows.Close()
	var uids []uint32
	for rows.Next() {
		var uid uint32
		if err := rows.Scan(&uid); err != nil {
			return nil, fmt.Errorf("mailbox %d: expunged: %w", mailboxID, err)
		}
		uids = append(uids, uid)
	}
	return uids, rows.Err()
}

// FlagState is the flags of one message in a mailbox.
type FlagState struct {
	UID     uint32
	Flags   []string
	ModSeq  int64
	Changed bool  // StoreFlags: this call changed them
	Prev    int64 // StoreFlags: the modseq before this call
	// Modified (StoreFlagsUnchangedSince): left alone, because the
	// message changed after the client's modseq.
	Modified bool
}

// changedFlagsQuery is ChangedFlags' query. The + before uid keeps SQLite
// from walking the primary key over every UID up to maxUID (all of a big
// mailbox, after every change) instead of the modseq index over the few
// rows changed.
const changedFlagsQuery = `SELECT uid, flags, modseq FROM mailbox_messages
	WHERE mailbox_id = ? AND modseq > ? AND +uid <= ? ORDER BY uid`

// ChangedFlags returns the messages with uid <= maxUID whose flags changed
// (or that arrived) in changes after modseq after, in UID order.
func (s *Store) ChangedFlags(ctx context.Context, mailboxID, after int64, maxUID uint32) ([]FlagState, error) {
	rows, err := s.queryRead(ctx,
		changedFlagsQuery,
		mailboxID, after, maxUID)
	if err != nil {
		return nil, fmt.Errorf("mailbox %d: changed flags: %w", mailboxID, err)
	}
	defer rows.Close()
	var out []FlagState
	for rows.Next() {
		var f FlagState
		var flags string
		if err := rows.Scan(&f.UID, &flags, &f.ModSeq); err != nil {
			return nil, fmt.Errorf("mailbox %d: changed flags: %w", mailboxID, err)
		}
		f.Flags = ParseFlags(flags)
		out = append(out, f)
	}
	return out, rows.Err()
}

// IndexRow is one message of a mailbox as an IMAP server's in-memory
// index of the mailbox holds it: what FETCH (FLAGS) and SELECT need.
// Its Flags may be shared with other rows and must not be changed.
type IndexRow struct {
	UID       uint32
	ModSeq    int64
	MessageID int64
	Flags     []string
}

// IndexRows returns the messages of a mailbox changed (or arrived) in
// changes after modseq after, in UID order; after 0 returns them all.
// With ExpungedAfter it brings an index read at after up to date.
func (s *Store) IndexRows(ctx context.Context, mailboxID, after int64) ([]IndexRow, error) {
	q := `SELECT uid, modseq, message_id, flags FROM mailbox_messages WHERE mailbox_id = ? AND modseq > ? ORDER BY uid`
	if after <= 0 {
		// The whole mailbox, in primary key order.
		q = `SELECT uid, modseq, message_id, flags FROM mailbox_messages WHERE mailbox_id = ? AND ? <= 0 ORDER BY uid`
	}
	rows, err := s.queryRead(ctx, q, mailboxID, after)
	if err != nil {
		return nil, fmt.Errorf("mailbox %d: index rows: %w", mailboxID, err)
	}
	defer rows.Close()
	var out []IndexRow
	// Rows with the same flags share one slice (callers never change
	// them): an index of a big mailbox holds a few distinct sets.
	sets := map[string][]string{}
	for rows.Next() {
		var r IndexRow
		var flags string
		if err := rows.Scan(&r.UID, &r.ModSeq, &r.MessageID, &flags); err != nil {
			return nil, fmt.Errorf("mailbox %d: index rows: %w", mailboxID, err)
		}
		set, ok := sets[flags]
		if !ok {
			set = ParseFlags(flags)
			sets[flags] = set
		}
		r.Flags = set
		out = append(out, r)
	}
	return out, rows.Err()
}

// ClaimRecent marks the messages of a mailbox up to UID upTo as seen by a
// session, and returns the UID up to which an earlier session had already
// claimed them: the messages in (returned, upTo] are \Recent for the caller.
func (s *Store) ClaimRecent(ctx context.Context, mailboxID int64, upTo uint32) (uint32, error) {
	var prev uint32
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.queryRowW(ctx, tx, `SELECT recent_uid FROM mailboxes WHERE id = ?`, mailboxID).Scan(&prev); err != nil {
			return notFound(err, "mailbox")
		}
		if upTo <= prev {
			return nil
		}
		_, err := s.execW(ctx, tx, `UPDATE mailboxes SET recent_uid = ? WHERE id = ?`, upTo, mailboxID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("mailbox %d: claim recent: %w", mailboxID, err)
	}
	return prev, nil
}

// MessageRow is one message of a mailbox as FETCH and SEARCH see it.
type MessageRow struct {
	UID       uint32
	MessageID int64
	Flags     []string
	ModSeq    int64
	Received  time.Time
	Size      int64 // RFC822.SIZE; -1 until the metadata cache is built
	Source    string
	Auth      string
	Trace     []byte // only with RowMeta
	Meta      []byte // only with RowMeta; nil until built
	Catalog   string // only with RowMeta: the catalog's blob hash
}

// RowColumns chooses what MessageRows reads.
type RowColumns int

const (
	// RowFlags reads UID, flags and modseq only.
	RowFlags RowColumns = iota
	// RowMeta also reads dates, size, source, trace and the metadata cache.
	RowMeta
)

// MessageRows reads the rows of the given UIDs (sorted ascending) that still
// exist, in UID order. Keep uids short (a few hundred): the rows of the whole
// UID range are scanned.
func (s *Store) MessageRows(ctx context.Context, mailboxID int64, uids []uint32, cols RowColumns) ([]*MessageRow, error) {
	if len(uids) == 0 {
		return nil, nil
	}
	q := `SELECT mm.uid, mm.message_id, mm.flags, mm.modseq FROM mailbox_messages mm
	      WHERE mm.mailbox_id = ? AND mm.uid >= ? AND mm.uid <= ? ORDER BY mm.uid`
	if cols == RowMeta {
		q = `SELECT mm.uid, mm.message_id, mm.flags, mm.modseq, m.received, m.size, m.source, m.auth, m.trace, m.meta,
		            COALESCE((SELECT blob FROM message_blobs WHERE message_id = m.id AND name = 'catalog'), '')
		     FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id
		     WHERE mm.mailbox_id = ? AND mm.uid >= ? AND mm.uid <= ? ORDER BY mm.uid`
	}
	rows, err := s.queryRead(ctx, q, mailboxID, uids[0], uids[len(uids)-1])
	if err != nil {
		return nil, fmt.Errorf("mailbox %d: messages: %w", mailboxID, err)
	}
	defer rows.Close()
	out := make([]*MessageRow, 0, len(uids))
	next := 0
	for rows.Next() {
		r := new(MessageRow)
		var flags string
		var received int64
		dest := []any{&r.UID, &r.MessageID, &flags, &r.ModSeq}
		if cols == RowMeta {
			dest = append(dest, &received, &r.Size, &r.Source, &r.Auth, &r.Trace, &r.Meta, &r.Catalog)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("mailbox %d: messages: %w", mailboxID, err)
		}
		for next < len(uids) && uids[next] < r.UID {
			next++
		}
		if next == len(uids) {
			break
		}
		if uids[next] != r.UID {
			continue
		}
		r.Flags = ParseFlags(flags)
		r.Received = time.Unix(received, 0)
		out = append(out, r)
	}
	return out, rows.Err()
}

// SealedMessage is a stored message as needed to open it.
type SealedMessage struct {
	ID       int64
	UserID   int64
	Header   []byte
	Source   string
	Auth     string
	Trace    []byte
	Received time.Time
	Filed    bool
	Blobs    map[string]string // "catalog" and part ids to blob hashes
	// NoWork: the message came on a ticket issued without work (§3.7).
	NoWork bool
	// AuthResults: see NewMessage.
	AuthResults string
}

// SealedMessage reads a stored message and the names of its blobs.
func (s *Store) SealedMessage(ctx context.Context, id int64) (*SealedMessage, error) {
	ms, err := s.SealedMessages(ctx, []int64{id})
	if err != nil {
		return nil, err
	}
	if m := ms[id]; m != nil {
		return m, nil
	}
	return nil, fmt.Errorf("message %d: %w", id, ErrNotFound)
}

// SealedMessages reads several stored messages (those that exist) by id.
// Messages and blob names are read by one statement, so in one snapshot:
// a message expunged meanwhile by another session is absent, never
// returned without its blobs.
func (s *Store) SealedMessages(ctx context.Context, ids []int64) (map[int64]*SealedMessage, error) {
	out := make(map[int64]*SealedMessage, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	in := strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	// One message (a FETCH of one BODY[]) is the common case: its
	// statement is prepared once; IN lists of other lengths are not, so
	// that they do not fill the statement cache.
	query := s.read.QueryContext
	if len(ids) == 1 {
		query = s.queryRead
	}
	rows, err := query(ctx,
		`SELECT m.id, m.user_id, m.header, m.source, m.auth, m.trace, m.received, m.filed, m.no_work, m.auth_results,
		        COALESCE(b.name, ''), COALESCE(b.blob, '')
		 FROM messages m LEFT JOIN message_blobs b ON b.message_id = m.id
		 WHERE m.id IN (`+in+`) ORDER BY m.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("messages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scanSealed(rows, out); err != nil {
			return nil, fmt.Errorf("messages: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("messages: %w", err)
	}
	return out, nil
}

// scanSealed reads one row of SealedMessages' join: a message's columns
// (kept from its first row) and one of its blobs.
func scanSealed(rows *sql.Rows, out map[int64]*SealedMessage) error {
	var (
		m              SealedMessage
		header, trace  sql.RawBytes
		received       int64
		blobName, hash string
	)
	if err := rows.Scan(&m.ID, &m.UserID, &header, &m.Source, &m.Auth, &trace, &received, &m.Filed, &m.NoWork, &m.AuthResults, &blobName, &hash); err != nil {
		return err
	}
	have := out[m.ID]
	if have == nil {
		m.Header, m.Trace = bytes.Clone(header), bytes.Clone(trace)
		m.Received = time.Unix(received, 0)
		m.Blobs = map[string]string{}
		have = &m
		out[m.ID] = have
	}
	if blobName != "" {
		have.Blobs[blobName] = hash
	}
	return nil
}

// MetaUpdate is the metadata cache of one message.
type MetaUpdate struct {
	MessageID int64
	Meta      []byte // encrypted by the caller
	Size      int64  // RFC822.SIZE
}

// SetMessageMeta stores metadata caches in one transaction.
func (s *Store) SetMessageMeta(ctx context.Context, updates []MetaUpdate) error {
	if len(updates) == 0 {
		return nil
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, u := range updates {
			if _, err := s.execW(ctx, tx, `UPDATE messages SET meta = ?, size = ? WHERE id = ?`, u.Meta, u.Size, u.MessageID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("message metadata: %w", err)
	}
	return nil
}

// UnindexedMessages returns up to limit ids (> after, ascending) of a
// user's filed messages that have no metadata cache yet.
func (s *Store) UnindexedMessages(ctx context.Context, userID, after int64, limit int) ([]int64, error) {
	return s.ids(ctx, `SELECT id FROM messages WHERE user_id = ? AND filed = 1 AND meta IS NULL AND id > ? ORDER BY id LIMIT ?`,
		userID, after, limit)
}

// UnfiledMessages returns up to limit ids (> after, ascending) of a user's
// messages that wait to be filed.
func (s *Store) UnfiledMessages(ctx context.Context, userID, after int64, limit int) ([]int64, error) {
	return s.ids(ctx, `SELECT id FROM messages WHERE user_id = ? AND filed = 0 AND id > ? ORDER BY id LIMIT ?`,
		userID, after, limit)
}

func (s *Store) ids(ctx context.Context, q string, args ...any) ([]int64, error) {
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("messages: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// FileMessage puts an unfiled message into a mailbox with its signature
// verdict and metadata cache, in one transaction. It returns nil when the
// message was filed already (by another session), so filing is idempotent.
func (s *Store) FileMessage(ctx context.Context, messageID, mailboxID int64, auth string, meta []byte, size int64) (*Delivered, error) {
	var d *Delivered
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var userID int64
		var filed bool
		if err := s.queryRowW(ctx, tx, `SELECT user_id, filed FROM messages WHERE id = ?`, messageID).Scan(&userID, &filed); err != nil {
			return notFound(err, "message")
		}
		if filed {
			return nil
		}
		if _, err := s.execW(ctx, tx, `UPDATE messages SET meta = ?, size = ? WHERE id = ?`, meta, size, messageID); err != nil {
			return err
		}
		uid, err := s.fileIntoTx(ctx, tx, messageID, mailboxID, auth, nil)
		if err != nil {
			return err
		}
		d = &Delivered{MessageID: messageID, UserID: userID, MailboxID: mailboxID, UID: uid}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("file message %d: %w", messageID, err)
	}
	if d != nil {
		s.publish(d.event())
	}
	return d, nil
}

// fileIntoTx is fileTx by mailbox id.
func (s *Store) fileIntoTx(ctx context.Context, tx *sql.Tx, messageID, mailboxID int64, auth string, flags []string) (uint32, error) {
	var uid uint32
	var modseq int64
	var keywords string
	err := s.queryRowW(ctx, tx,
		`UPDATE mailboxes SET uid_next = uid_next + 1, modseq = modseq + 1 WHERE id = ? RETURNING uid_next - 1, modseq, keywords`,
		mailboxID).Scan(&uid, &modseq, &keywords)
	if err != nil {
		return 0, notFound(err, fmt.Sprintf("mailbox %d", mailboxID))
	}
	if _, err := s.execW(ctx, tx,
		`INSERT INTO mailbox_messages (mailbox_id, uid, message_id, flags, modseq) VALUES (?, ?, ?, ?, ?)`,
		mailboxID, uid, messageID, FormatFlags(flags), modseq); err != nil {
		return 0, err
	}
	if err := addKeywords(ctx, tx, mailboxID, keywords, flags); err != nil {
		return 0, err
	}
	if _, err := s.execW(ctx, tx, `UPDATE messages SET filed = 1, auth = ? WHERE id = ?`, auth, messageID); err != nil {
		return 0, err
	}
	return uid, nil
}

// AppendMessage stores a message saved by the user's mail client (IMAP
// APPEND) straight into a mailbox with flags. meta is called inside the
// transaction with the new message's id and returns its encrypted metadata
// cache; size is its RFC822.SIZE. m.Mailbox is ignored.
func (s *Store) AppendMessage(ctx context.Context, m *NewMessage, mailboxID int64, size int64, meta func(messageID int64) ([]byte, error)) (*Delivered, uint32, error) {
	var d *Delivered
	var validity uint32
	err := s.tx(ctx, func(tx *sql.Tx) error {
		stored := *m
		stored.Mailbox = ""
		var err error
		if d, err = s.insertMessage(ctx, tx, &stored); err != nil {
			return err
		}
		b, err := meta(d.MessageID)
		if err != nil {
			return err
		}
		if _, err := s.execW(ctx, tx, `UPDATE messages SET meta = ?, size = ? WHERE id = ?`, b, size, d.MessageID); err != nil {
			return err
		}
		if d.UID, err = s.fileIntoTx(ctx, tx, d.MessageID, mailboxID, m.Auth, m.Flags); err != nil {
			return err
		}
		d.MailboxID = mailboxID
		return s.queryRowW(ctx, tx, `SELECT uid_validity FROM mailboxes WHERE id = ?`, mailboxID).Scan(&validity)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("append to mailbox %d: %w", mailboxID, err)
	}
	s.publish(d.event())
	return d, validity, nil
}

// FirstUnseen returns the lowest UID of a message without \Seen, 0 if none.
func (s *Store) FirstUnseen(ctx context.Context, mailboxID int64) (uint32, error) {
	var uid sql.NullInt64
	err := s.read.QueryRowContext(ctx,
		`SELECT MIN(uid) FROM mailbox_messages WHERE mailbox_id = ? AND instr(' ' || flags || ' ', ' \Seen ') = 0`, mailboxID).Scan(&uid)
	if err != nil {
		return 0, fmt.Errorf("mailbox %d: first unseen: %w", mailboxID, err)
	}
	return uint32(uid.Int64), nil
}
