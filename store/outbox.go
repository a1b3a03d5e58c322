package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"tollbridge/protocol"
)

// OutboxMessage is one accepted message waiting for delivery, sealed.
type OutboxMessage struct {
	ID         int64
	UserID     int64                 // the sending local user; 0 if gone
	Sender     string                // envelope sender, normalised
	SessionKey []byte                // PKESK of the session key to the outbox key
	Parts      []protocol.HeaderPart // the encrypted parts, in catalog order
	Size       int64                 // size of the rebuilt plaintext message
	ClientIP   string
	Created    time.Time
	Blobs      map[string]BlobRef // "catalog" and part ids
	// Peers are the recipients, noted as the user's correspondents when
	// the message is queued (their signed replies need no work).
	Peers []Correspondent
	// EnvID and Ret are RFC 3461's ENVID (decoded) and RET ("FULL",
	// "HDRS" or "") from MAIL FROM.
	EnvID, Ret string
	// DSN holds RFC 3461's RCPT parameters by recipient, for those given.
	DSN map[string]RecipientDSN
}

// RecipientDSN is what a recipient's RCPT TO asked for (RFC 3461 §4):
// Notify is "NEVER" or a comma-separated subset of SUCCESS, FAILURE and
// DELAY ("" when not given: failures only); ORCPT is "type;address".
type RecipientDSN struct {
	Notify, ORCPT string
}

// OutboxRecipient is one recipient of an outbox message.
type OutboxRecipient struct {
	ID          int64
	OutboxID    int64
	Recipient   string
	Route       string // "ticket", "legacy", "local" once known
	State       string // waiting, working, uploading, relaying, failed
	Tries       int
	NextAttempt time.Time
	LastError   string
	Progress    string
	Header      []byte // per-recipient header, once made
	Endpoint    string // ticket API base URL of the current ticket
	Ticket      []byte // current ticket JSON, to resume
	DSN         RecipientDSN
}

// Outcomes recorded in the deliveries log.
const (
	OutcomeDelivered = "delivered"
	OutcomeBounced   = "bounced"
)

// EnqueueOutbox stores a sealed message with one entry per recipient in
// one transaction, all due at once. When it returns nil the message is on
// disk.
func (s *Store) EnqueueOutbox(ctx context.Context, m *OutboxMessage, recipients []string) error {
	m.Created = s.now().Truncate(time.Second)
	parts, err := json.Marshal(m.Parts)
	if err != nil {
		return fmt.Errorf("outbox parts: %w", err)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		var uid any
		if m.UserID != 0 {
			uid = m.UserID
		}
		err := s.queryRowW(ctx, tx,
			`INSERT INTO outbox (user_id, sender, session_key, parts, size, client_ip, created, dsn_envid, dsn_ret) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			uid, m.Sender, m.SessionKey, parts, m.Size, m.ClientIP, m.Created.Unix(), m.EnvID, m.Ret).Scan(&m.ID)
		if err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		for _, name := range sortedKeys(m.Blobs) {
			ref := m.Blobs[name]
			if err := s.registerBlob(ctx, tx, ref); err != nil {
				return err
			}
			if _, err := s.execW(ctx, tx, `INSERT INTO outbox_blobs (outbox_id, name, blob) VALUES (?, ?, ?)`, m.ID, name, ref.Hash); err != nil {
				return fmt.Errorf("outbox %d blob %s: %w", m.ID, name, err)
			}
		}
		for _, r := range recipients {
			if _, err := s.execW(ctx, tx,
				`INSERT INTO outbox_recipients (outbox_id, recipient, next_attempt, dsn_notify, dsn_orcpt) VALUES (?, ?, ?, ?, ?)`,
				m.ID, r, m.Created.Unix(), m.DSN[r].Notify, m.DSN[r].ORCPT); err != nil {
				return fmt.Errorf("outbox %d recipient %s: %w", m.ID, r, err)
			}
		}
		for _, p := range m.Peers {
			if err := noteCorrespondent(ctx, tx, m.UserID, p, m.Created.Unix()); err != nil {
				return fmt.Errorf("outbox %d correspondent: %w", m.ID, err)
			}
		}
		return nil
	})
}

// OutboxMessage loads an outbox message with its blobs.
func (s *Store) OutboxMessage(ctx context.Context, id int64) (*OutboxMessage, error) {
	var m OutboxMessage
	var uid sql.NullInt64
	var created int64
	var parts []byte
	err := s.read.QueryRowContext(ctx,
		`SELECT id, user_id, sender, session_key, parts, size, client_ip, created, dsn_envid, dsn_ret FROM outbox WHERE id = ?`, id).
		Scan(&m.ID, &uid, &m.Sender, &m.SessionKey, &parts, &m.Size, &m.ClientIP, &created, &m.EnvID, &m.Ret)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("outbox %d", id))
	}
	if err := json.Unmarshal(parts, &m.Parts); err != nil {
		return nil, fmt.Errorf("outbox %d parts: %w", id, err)
	}
	m.UserID, m.Created = uid.Int64, time.Unix(created, 0)
	rows, err := s.read.QueryContext(ctx, `SELECT o.name, o.blob, b.size FROM outbox_blobs o JOIN blobs b ON b.hash = o.blob WHERE o.outbox_id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("outbox %d blobs: %w", id, err)
	}
	defer rows.Close()
	m.Blobs = map[string]BlobRef{}
	for rows.Next() {
		var name string
		var ref BlobRef
		if err := rows.Scan(&name, &ref.Hash, &ref.Size); err != nil {
			return nil, err
		}
		m.Blobs[name] = ref
	}
	return &m, rows.Err()
}

const recipientColumns = `id, outbox_id, recipient, route, state, tries, next_attempt, last_error, progress, header, endpoint, ticket, dsn_notify, dsn_orcpt`

func scanRecipient(row interface{ Scan(...any) error }) (*OutboxRecipient, error) {
	var r OutboxRecipient
	var next int64
	err := row.Scan(&r.ID, &r.OutboxID, &r.Recipient, &r.Route, &r.State, &r.Tries, &next, &r.LastError, &r.Progress, &r.Header, &r.Endpoint, &r.Ticket, &r.DSN.Notify, &r.DSN.ORCPT)
	if err != nil {
		return nil, err
	}
	r.NextAttempt = time.Unix(next, 0)
	return &r, nil
}

// RecipientUpdate changes what is known about a recipient's delivery; nil
// fields are left alone.
type RecipientUpdate struct {
	Route, State, LastError, Progress, Endpoint *string
	Header, Ticket                              []byte
	ClearTicket                                 bool
}

// UpdateRecipient records progress of a delivery.
func (s *Store) UpdateRecipient(ctx context.Context, id int64, u RecipientUpdate) error {
	set, args := "", []any{}
	add := func(col string, v any) {
		if set != "" {
			set += ", "
		}
		set += col + " = ?"
		args = append(args, v)
	}
	for col, v := range map[string]*string{"route": u.Route, "state": u.State, "last_error": u.LastError, "progress": u.Progress, "endpoint": u.Endpoint} {
		if v != nil {
			add(col, *v)
		}
	}
	if u.Header != nil {
		add("header", u.Header)
	}
	if u.Ticket != nil || u.ClearTicket {
		add("ticket", u.Ticket)
	}
	if set == "" {
		return nil
	}
	args = append(args, id)
	return s.laxTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE outbox_recipients SET `+set+` WHERE id = ?`, args...)
		if err != nil {
			return fmt.Errorf("outbox recipient %d: %w", id, err)
		}
		return nil
	})
}

// Delivery is the outcome of one recipient, for the deliveries log.
type Delivery struct {
	Outcome  string // OutcomeDelivered or OutcomeBounced
	Detail   string
	RemoteID string // the receiving server's message id
	Receipt  []byte
	// ReceiptCheck is the sender's verification of Receipt: "pass",
	// "fail: why" or "unchecked: why".
	ReceiptCheck string
	// Recipient and At are filled by Deliveries.
	Recipient string
	At        time.Time
	// Local, when set, is stored for a local recipient in the same
	// transaction, so a crash never stores it twice.
	Local *NewMessage
}

// FinishRecipient marks a recipient done, logs the outcome and, when it
// was the last recipient, deletes the outbox message and its session key.
func (s *Store) FinishRecipient(ctx context.Context, r *OutboxRecipient, d Delivery) error {
	var delivered *Delivered
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := s.execW(ctx, tx, `UPDATE outbox_recipients SET done = 1, state = ? WHERE id = ? AND done = 0`, d.Outcome, r.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("already finished: %w", ErrNotFound)
		}
		if d.Local != nil {
			if delivered, err = s.insertMessage(ctx, tx, d.Local); err != nil {
				return err
			}
		}
		if _, err := s.execW(ctx, tx,
			`INSERT INTO deliveries (user_id, sender, recipient, outcome, detail, remote_id, header, receipt, at, receipt_check)
			 SELECT user_id, sender, ?, ?, ?, ?, ?, ?, ?, ? FROM outbox WHERE id = ?`,
			r.Recipient, d.Outcome, d.Detail, d.RemoteID, r.Header, d.Receipt, s.unix(), d.ReceiptCheck, r.OutboxID); err != nil {
			return err
		}
		_, err = s.execW(ctx, tx,
			`DELETE FROM outbox WHERE id = ? AND NOT EXISTS (SELECT 1 FROM outbox_recipients WHERE outbox_id = ? AND done = 0)`,
			r.OutboxID, r.OutboxID)
		return err
	})
	if err != nil {
		return fmt.Errorf("outbox recipient %d: %w", r.ID, err)
	}
	if delivered != nil {
		s.publish(delivered.event())
	}
	return nil
}

// QueueEntry is one pending recipient as `bridge queue` shows it.
type QueueEntry struct {
	OutboxRecipient
	Sender  string
	Created time.Time
}

// Queue lists every pending recipient, oldest message first.
func (s *Store) Queue(ctx context.Context) ([]*QueueEntry, error) {
	rows, err := s.read.QueryContext(ctx,
		`SELECT r.id, r.outbox_id, r.recipient, r.route, r.state, r.tries, r.next_attempt, r.last_error, r.progress,
		        NULL, r.endpoint, NULL, o.sender, o.created
		 FROM outbox_recipients r JOIN outbox o ON o.id = r.outbox_id WHERE r.done = 0 ORDER BY o.created, r.id`)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	defer rows.Close()
	var out []*QueueEntry
	for rows.Next() {
		var q QueueEntry
		var next, created int64
		r := &q.OutboxRecipient
		if err := rows.Scan(&r.ID, &r.OutboxID, &r.Recipient, &r.Route, &r.State, &r.Tries, &next, &r.LastError, &r.Progress,
			&r.Header, &r.Endpoint, &r.Ticket, &q.Sender, &created); err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
		r.NextAttempt, q.Created = time.Unix(next, 0), time.Unix(created, 0)
		out = append(out, &q)
	}
	return out, rows.Err()
}

// Deliveries lists the last n delivery outcomes, newest first.
func (s *Store) Deliveries(ctx context.Context, n int) ([]Delivery, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT outcome, detail, remote_id, receipt, receipt_check, recipient, at FROM deliveries ORDER BY id DESC LIMIT ?`, n)
	if err != nil {
		return nil, fmt.Errorf("deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var at int64
		if err := rows.Scan(&d.Outcome, &d.Detail, &d.RemoteID, &d.Receipt, &d.ReceiptCheck, &d.Recipient, &at); err != nil {
			return nil, err
		}
		d.At = time.Unix(at, 0)
		out = append(out, d)
	}
	return out, rows.Err()
}

// QueueDepth is the number of recipients waiting for delivery.
func (s *Store) QueueDepth(ctx context.Context) (int, error) {
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox_recipients WHERE done = 0`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("queue depth: %w", err)
	}
	return n, nil
}

// PruneDeliveries forgets delivery outcomes older than keep.
func (s *Store) PruneDeliveries(ctx context.Context, keep time.Duration) error {
	return s.laxTx(ctx, func(tx *sql.Tx) error {
		_, err := s.execW(ctx, tx, `DELETE FROM deliveries WHERE at < ?`, s.now().Add(-keep).Unix())
		return err
	})
}

// RetryNow makes the pending recipients of outbox message id (every
// message when id is 0) due now, and returns how many it changed. The
// outbox's next poll claims them; tries and the retry_for deadline are
// unchanged.
func (s *Store) RetryNow(ctx context.Context, id int64) (int, error) {
	var n int64
	err := s.laxTx(ctx, func(tx *sql.Tx) error {
		res, err := s.execW(ctx, tx,
			`UPDATE outbox_recipients SET next_attempt = ? WHERE done = 0 AND (? = 0 OR outbox_id = ?)`,
			s.now().Unix(), id, id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("retry outbox %d: %w", id, err)
	}
	return int(n), nil
}
