package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"time"
)

// Ticket states other than "usable", in the precedence order of docs/protocol.md
// §3.6: unknown (ErrNotFound), completed, expired, not yet valid.
var (
	ErrTicketCompleted = errors.New("ticket already completed")
	ErrTicketExpired   = errors.New("ticket expired")
	ErrTicketNotValid  = errors.New("ticket not yet valid")
)

// Upload refusals: what a ticket announced bounds what may be stored on it.
var (
	// ErrUploadTooLarge: the catalog and parts would exceed the bytes the
	// ticket announced.
	ErrUploadTooLarge = errors.New("more bytes than the ticket announced")
	// ErrTooManyParts: more parts than the ticket announced.
	ErrTooManyParts = errors.New("more parts than the ticket announced")
	// ErrUploadChanged: an upload was replaced while its ticket completed.
	ErrUploadChanged = errors.New("upload replaced during completion")
	// ErrPendingQuota: the upload would put more bytes on open tickets
	// than an UploadQuota allows.
	ErrPendingQuota = errors.New("too many bytes pending on open tickets")
)

// ClientKey groups client addresses for the ticket API's limits: an IPv4
// address as is, an IPv6 address as its /64 (one host usually owns a
// whole /64). Tickets record it, so limits hold across restarts and nodes.
func ClientKey(ip string) string {
	a := net.ParseIP(ip)
	if a == nil || a.To4() != nil {
		return ip
	}
	return a.Mask(net.CIDRMask(64, 128)).String()
}

// UploadQuota bounds the bytes uploaded to tickets that have not
// completed (header, catalog and parts, until completion or until the
// sweeper deletes them): per client (ClientKey of the ticket's ClientIP)
// and in all. Zero means no bound.
type UploadQuota struct {
	PerClient int64
	Total     int64
}

// Ticket is one ticket issued by this server.
type Ticket struct {
	ID            string
	SenderHash    string
	RecipientHash string
	UserID        int64
	Worktype      string // "" when the ticket was valid at once
	Challenge     []byte // the worktype's challenge JSON
	Needed, Done  int    // proofs needed and counted
	Valid         bool
	Expires       time.Time
	Blocks        int
	Attachments   int
	Bytes         int64
	Created       time.Time
	ClientIP      string
	Completed     time.Time // zero until completed
	MessageID     string    // server's message id, set at completion
	Receipt       []byte
}

const ticketColumns = `id, sender_hash, recipient_hash, user_id, worktype, challenge, needed, done, valid,
	expires, blocks, attachments, bytes, created, client_ip, completed, message_id, receipt`

func scanTicket(row interface{ Scan(...any) error }) (*Ticket, error) {
	var t Ticket
	var valid int
	var expires, created, completed int64
	err := row.Scan(&t.ID, &t.SenderHash, &t.RecipientHash, &t.UserID, &t.Worktype, &t.Challenge,
		&t.Needed, &t.Done, &valid, &expires, &t.Blocks, &t.Attachments, &t.Bytes, &created,
		&t.ClientIP, &completed, &t.MessageID, &t.Receipt)
	if err != nil {
		return nil, err
	}
	t.Valid = valid != 0
	t.Expires = time.Unix(expires, 0)
	t.Created = time.Unix(created, 0)
	if completed != 0 {
		t.Completed = time.Unix(completed, 0)
	}
	return &t, nil
}

// CreateTicket stores a new ticket; Created is set here, and the ticket
// counts toward the UploadQuota of ClientKey(ClientIP).
func (s *Store) CreateTicket(ctx context.Context, t *Ticket) error {
	t.Created = s.now().Truncate(time.Second)
	return s.laxTx(ctx, func(tx *sql.Tx) error {
		_, err := s.execW(ctx, tx,
			`INSERT INTO tickets (id, sender_hash, recipient_hash, user_id, worktype, challenge, needed, done, valid,
			   expires, blocks, attachments, bytes, created, client_ip, client_key)
			 VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.SenderHash, t.RecipientHash, t.UserID, t.Worktype, t.Challenge, t.Needed, boolInt(t.Valid),
			t.Expires.Unix(), t.Blocks, t.Attachments, t.Bytes, t.Created.Unix(), t.ClientIP, ClientKey(t.ClientIP))
		if err != nil {
			return fmt.Errorf("ticket %s: %w", t.ID, err)
		}
		return nil
	})
}

// Ticket loads a ticket by id.
func (s *Store) Ticket(ctx context.Context, id string) (*Ticket, error) {
	t, err := scanTicket(s.queryReadRow(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE id = ?`, id))
	return t, notFound(err, "ticket "+id)
}

func (s *Store) ticketTx(ctx context.Context, tx *sql.Tx, id string) (*Ticket, error) {
	t, err := scanTicket(s.queryRowW(ctx, tx, `SELECT `+ticketColumns+` FROM tickets WHERE id = ?`, id))
	return t, notFound(err, "ticket "+id)
}

// usable checks a ticket in precedence order; needValid adds the 403 case.
func (s *Store) usable(t *Ticket, needValid bool) error {
	switch {
	case !t.Completed.IsZero():
		return fmt.Errorf("ticket %s: %w", t.ID, ErrTicketCompleted)
	case s.unix() >= t.Expires.Unix():
		return fmt.Errorf("ticket %s: %w", t.ID, ErrTicketExpired)
	case needValid && !t.Valid:
		return fmt.Errorf("ticket %s: %w", t.ID, ErrTicketNotValid)
	}
	return nil
}

// CheckTicket loads a ticket and checks it is open (not completed, not
// expired) and, when needValid, valid.
func (s *Store) CheckTicket(ctx context.Context, id string, needValid bool) (*Ticket, error) {
	t, err := s.Ticket(ctx, id)
	if err != nil {
		return nil, err
	}
	return t, s.usable(t, needValid)
}

// AddProofs counts the given (already verified) proofs toward a ticket,
// once each, and makes the ticket valid with a fresh expiry when enough
// have been counted. It returns the ticket as it now stands.
func (s *Store) AddProofs(ctx context.Context, id string, proofs []string, expiry time.Duration) (*Ticket, error) {
	var t *Ticket
	err := s.laxTx(ctx, func(tx *sql.Tx) error {
		var err error
		if t, err = s.ticketTx(ctx, tx, id); err != nil {
			return err
		}
		if err := s.usable(t, false); err != nil || t.Valid {
			return err
		}
		for _, p := range proofs {
			res, err := s.execW(ctx, tx, `INSERT INTO ticket_proofs (ticket_id, proof) VALUES (?, ?) ON CONFLICT DO NOTHING`, id, p)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			t.Done += int(n)
		}
		if t.Done >= t.Needed {
			t.Valid = true
			t.Expires = s.now().Add(expiry).Truncate(time.Second)
		}
		_, err = s.execW(ctx, tx, `UPDATE tickets SET done = ?, valid = ?, expires = ? WHERE id = ?`,
			t.Done, boolInt(t.Valid), t.Expires.Unix(), id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ticket %s proofs: %w", id, err)
	}
	return t, nil
}

// PutUpload records an uploaded blob under name for a valid open ticket,
// replacing an earlier upload of the same name. The catalog and parts
// together stay within the bytes the ticket announced and the parts
// within its count (checked here, in the transaction, so parallel uploads
// cannot exceed them); a replaced blob nothing else uses is deleted at once.
func (s *Store) PutUpload(ctx context.Context, id, name string, ref BlobRef) error {
	return s.PutUploadWithin(ctx, id, name, ref, UploadQuota{})
}

// PutUploadWithin is PutUpload that also keeps the bytes pending on open
// tickets within q, counting every node's uploads to this store: over
// either bound it records nothing and returns ErrPendingQuota.
func (s *Store) PutUploadWithin(ctx context.Context, id, name string, ref BlobRef, q UploadQuota) error {
	var replaced string
	err := s.laxTx(ctx, func(tx *sql.Tx) error {
		t, err := s.ticketTx(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := s.usable(t, true); err != nil {
			return err
		}
		current, err := uploadsTx(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := uploadFits(t, current, name, ref); err != nil {
			return err
		}
		if err := quotaFits(ctx, tx, q, ClientKey(t.ClientIP), ref.Size-current[name].Size); err != nil {
			return fmt.Errorf("ticket %s upload %s: %w", id, name, err)
		}
		if err := s.registerBlob(ctx, tx, ref); err != nil {
			return err
		}
		_, err = s.execW(ctx, tx,
			`INSERT INTO ticket_uploads (ticket_id, name, blob, size) VALUES (?, ?, ?, ?)
			 ON CONFLICT (ticket_id, name) DO UPDATE SET blob = excluded.blob, size = excluded.size`,
			id, name, ref.Hash, ref.Size)
		if err != nil {
			return fmt.Errorf("ticket %s upload %s: %w", id, name, err)
		}
		if old, ok := current[name]; ok && old.Hash != ref.Hash {
			replaced, err = s.dropUnreferenced(ctx, tx, old.Hash)
		}
		return err
	})
	if replaced != "" {
		s.blobs.Remove(replaced)
	}
	return err
}

// uploadFits checks a new upload against what the ticket announced.
func uploadFits(t *Ticket, current map[string]BlobRef, name string, ref BlobRef) error {
	if name == "header" {
		return nil // bounded by the API, and not part of the announced bytes
	}
	used, parts := ref.Size, 0
	if name != "catalog" {
		parts = 1
	}
	for n, r := range current {
		if n == "header" || n == name {
			continue
		}
		used += r.Size
		if n != "catalog" {
			parts++
		}
	}
	if used > t.Bytes {
		return fmt.Errorf("%s: %d bytes with the other uploads, %d announced: %w", name, used, t.Bytes, ErrUploadTooLarge)
	}
	if parts > t.Blocks+t.Attachments {
		return fmt.Errorf("%s: %d parts, %d announced: %w", name, parts, t.Blocks+t.Attachments, ErrTooManyParts)
	}
	return nil
}

// quotaFits checks that growing the client's pending bytes by grow keeps
// them, and everyone's, within q.
func quotaFits(ctx context.Context, q queryer, quota UploadQuota, key string, grow int64) error {
	if quota.PerClient <= 0 && quota.Total <= 0 {
		return nil
	}
	client, total, err := pendingBytes(ctx, q, key)
	if err != nil {
		return err
	}
	switch {
	case quota.PerClient > 0 && client+grow > quota.PerClient:
		return fmt.Errorf("%d bytes pending from %s, at most %d: %w", client+grow, key, quota.PerClient, ErrPendingQuota)
	case quota.Total > 0 && total+grow > quota.Total:
		return fmt.Errorf("%d bytes pending in all, at most %d: %w", total+grow, quota.Total, ErrPendingQuota)
	}
	return nil
}

// PendingBytes returns the bytes uploaded to tickets not completed: to
// those of the client key (see ClientKey) and to all. Uploads count until
// their ticket completes or is closed, or the sweeper deletes them after
// it expired: until then they are on disk.
func (s *Store) PendingBytes(ctx context.Context, key string) (client, total int64, err error) {
	client, total, err = pendingBytes(ctx, s.read, key)
	if err != nil {
		return 0, 0, fmt.Errorf("pending bytes of %s: %w", key, err)
	}
	return client, total, nil
}

// queryer is a pool or a transaction.
type queryer interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

func pendingBytes(ctx context.Context, q queryer, key string) (client, total int64, err error) {
	err = q.QueryRowContext(ctx,
		`SELECT COALESCE(SUM(CASE WHEN t.client_key = ? THEN u.size ELSE 0 END), 0), COALESCE(SUM(u.size), 0)
		 FROM ticket_uploads u JOIN tickets t ON t.id = u.ticket_id`, key).Scan(&client, &total)
	return client, total, err
}

// FailComplete counts a completion of ticket id that was refused (422).
// The limit-th closes the ticket: it answers as expired from then on and
// its uploads are deleted at once, so the sender starts over with a new
// ticket (and new work). It returns whether the ticket is now closed.
func (s *Store) FailComplete(ctx context.Context, id string, limit int) (closed bool, err error) {
	var dropped []string
	err = s.laxTx(ctx, func(tx *sql.Tx) error {
		var failed int
		err := s.queryRowW(ctx, tx,
			`UPDATE tickets SET failed_completes = failed_completes + 1 WHERE id = ? AND completed = 0 RETURNING failed_completes`,
			id).Scan(&failed)
		if err := notFound(err, "ticket "+id); err != nil {
			return err
		}
		if failed < limit {
			return nil
		}
		closed = true
		if _, err := s.execW(ctx, tx, `UPDATE tickets SET expires = ? WHERE id = ? AND expires > ?`, s.unix(), id, s.unix()); err != nil {
			return err
		}
		dropped, err = s.deleteUploads(ctx, tx, id)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("ticket %s failed complete: %w", id, err)
	}
	for _, h := range dropped {
		s.blobs.Remove(h)
	}
	return closed, nil
}

// deleteUploads deletes a ticket's uploads and returns the blobs nothing
// references any more, whose files the caller removes after the commit.
func (s *Store) deleteUploads(ctx context.Context, tx *sql.Tx, id string) ([]string, error) {
	ups, err := uploadsTx(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if _, err := s.execW(ctx, tx, `DELETE FROM ticket_uploads WHERE ticket_id = ?`, id); err != nil {
		return nil, err
	}
	var dropped []string
	for _, ref := range ups {
		h, err := s.dropUnreferenced(ctx, tx, ref.Hash)
		if err != nil {
			return nil, err
		}
		if h != "" {
			dropped = append(dropped, h)
		}
	}
	return dropped, nil
}

// dropUnreferenced deletes a blob's row when nothing references it and
// returns its hash, whose file the caller removes after the commit.
func (s *Store) dropUnreferenced(ctx context.Context, tx *sql.Tx, hash string) (string, error) {
	res, err := s.execW(ctx, tx, `DELETE FROM blobs WHERE hash = ? AND refs <= 0`, hash)
	if err != nil {
		return "", err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", nil
	}
	return hash, nil
}

// DiscardBlob removes the file of a blob that was written but never
// registered (an upload refused after its body was read). A blob some row
// registered, maybe the same bytes uploaded elsewhere, is kept.
func (s *Store) DiscardBlob(ctx context.Context, hash string) error {
	return s.laxTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := s.queryRowW(ctx, tx, `SELECT 1 FROM blobs WHERE hash = ?`, hash).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return s.blobs.Remove(hash)
		}
		return err
	})
}

// UploadChangedError is ErrUploadChanged for one part ("catalog" or a
// part id).
type UploadChangedError struct{ Part string }

func (e *UploadChangedError) Error() string { return e.Part + ": " + ErrUploadChanged.Error() }

// Is makes errors.Is(err, ErrUploadChanged) hold.
func (e *UploadChangedError) Is(target error) bool { return target == ErrUploadChanged }

// Uploads returns a ticket's uploads by name.
func (s *Store) Uploads(ctx context.Context, id string) (map[string]BlobRef, error) {
	m, err := queryUploads(ctx, s.read, id)
	if err != nil {
		return nil, fmt.Errorf("ticket %s uploads: %w", id, err)
	}
	return m, nil
}

// CompleteTicket delivers the ticket's message to its user in the same
// transaction that marks the ticket completed, so a message is stored once
// or not at all. uploads maps message blob names ("catalog", part ids) to
// upload names; checked holds the uploads as the caller checked (size and
// hash) and synced them: one replaced since is ErrUploadChanged.
func (s *Store) CompleteTicket(ctx context.Context, id string, m *NewMessage, uploads map[string]string, checked map[string]BlobRef, receipt []byte, messageID string) error {
	var delivered *Delivered
	err := s.tx(ctx, func(tx *sql.Tx) error {
		t, err := s.ticketTx(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := s.usable(t, true); err != nil {
			return err
		}
		current, err := uploadsTx(ctx, tx, id)
		if err != nil {
			return err
		}
		m.Blobs = map[string]BlobRef{}
		for name, upload := range uploads {
			ref, ok := current[upload]
			if !ok {
				return fmt.Errorf("upload %s: %w", upload, ErrNotFound)
			}
			if ref != checked[upload] {
				return &UploadChangedError{Part: name}
			}
			m.Blobs[name] = ref
		}
		if delivered, err = s.insertMessage(ctx, tx, m); err != nil {
			return err
		}
		if _, err := s.execW(ctx, tx, `DELETE FROM ticket_uploads WHERE ticket_id = ?`, id); err != nil {
			return err
		}
		_, err = s.execW(ctx, tx, `UPDATE tickets SET completed = ?, message_id = ?, receipt = ? WHERE id = ?`,
			s.unix(), messageID, receipt, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("ticket %s complete: %w", id, err)
	}
	s.publish(delivered.event())
	return nil
}

func uploadsTx(ctx context.Context, tx *sql.Tx, id string) (map[string]BlobRef, error) {
	return queryUploads(ctx, tx, id)
}

// queryUploads reads a ticket's uploads through the pool or a transaction.
func queryUploads(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, id string) (map[string]BlobRef, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, blob, size FROM ticket_uploads WHERE ticket_id = ?`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]BlobRef{}
	for rows.Next() {
		var name string
		var ref BlobRef
		if err := rows.Scan(&name, &ref.Hash, &ref.Size); err != nil {
			return nil, err
		}
		m[name] = ref
	}
	return m, rows.Err()
}

// SweepTickets deletes the uploads of open tickets that have expired (parts
// that never complete go once their ticket expires), and forgets tickets
// that expired or completed more than keep ago (until then they still
// answer 410 or 409). It returns how many uploads and tickets went.
func (s *Store) SweepTickets(ctx context.Context, keep time.Duration) (uploads, tickets int64, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		res, err := s.execW(ctx, tx,
			`DELETE FROM ticket_uploads WHERE ticket_id IN (SELECT id FROM tickets WHERE completed = 0 AND expires <= ?)`,
			s.unix())
		if err != nil {
			return err
		}
		uploads, _ = res.RowsAffected()
		old := s.now().Add(-keep).Unix()
		res, err = s.execW(ctx, tx,
			`DELETE FROM tickets WHERE (completed = 0 AND expires < ?) OR (completed != 0 AND completed < ?)`, old, old)
		if err != nil {
			return err
		}
		tickets, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("sweep tickets: %w", err)
	}
	return uploads, tickets, nil
}
