package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrExists is returned when creating something that already exists.
var ErrExists = errors.New("already exists")

// User is one local user.
type User struct {
	ID          int64
	Address     string // normalised (lowercase, ASCII domain)
	AddressHash string // hash(a) of DESIGN §3.6
	WKDName     string // "domain/hash" of the user's Web Key Directory entry
	Fingerprint string // primary key v4 fingerprint, lowercase hex
	PublicKey   []byte // binary transferable public key
	PrivateKey  []byte // passphrase-protected binary secret key
	Created     time.Time
}

// DefaultMailboxes are created with every user, with their SPECIAL-USE
// attribute (RFC 6154); INBOX has none.
var DefaultMailboxes = []struct{ Name, SpecialUse string }{
	{"INBOX", ""},
	{"Sent", `\Sent`},
	{"Drafts", `\Drafts`},
	{"Trash", `\Trash`},
	{"Junk", `\Junk`},
	{"Archive", `\Archive`},
}

// CreateUser stores a new user with the default mailboxes. It fails with
// ErrExists when the address is taken.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	u.Created = s.now().Truncate(time.Second)
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO users (address, address_hash, wkd_name, fingerprint, public_key, private_key, created)
			 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			u.Address, u.AddressHash, u.WKDName, u.Fingerprint, u.PublicKey, u.PrivateKey, u.Created.Unix())
		if err != nil {
			return fmt.Errorf("user %s: %w", u.Address, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("user %s: %w", u.Address, ErrExists)
		}
		u.ID, _ = res.LastInsertId()
		for _, m := range DefaultMailboxes {
			if _, err := s.createMailbox(ctx, tx, u.ID, m.Name, m.SpecialUse); err != nil {
				return fmt.Errorf("user %s: mailbox %s: %w", u.Address, m.Name, err)
			}
		}
		return nil
	})
}

// createMailbox inserts a mailbox row. Its UIDVALIDITY is larger than any
// this user's mailboxes ever had, so a deleted and re-created name never
// reuses one.
func (s *Store) createMailbox(ctx context.Context, tx *sql.Tx, userID int64, name, specialUse string) (int64, error) {
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT uid_validity_seq FROM users WHERE id = ?`, userID).Scan(&last); err != nil {
		return 0, err
	}
	v := max(s.unix(), last+1) & 0xffffffff
	if _, err := tx.ExecContext(ctx, `UPDATE users SET uid_validity_seq = ? WHERE id = ?`, v, userID); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx,
		`INSERT INTO mailboxes (user_id, name, special_use, uid_validity) VALUES (?, ?, ?, ?)`,
		userID, name, specialUse, v)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

const userColumns = `id, address, address_hash, wkd_name, fingerprint, public_key, private_key, created`

func scanUser(row interface{ Scan(...any) error }) (*User, error) {
	var u User
	var created int64
	if err := row.Scan(&u.ID, &u.Address, &u.AddressHash, &u.WKDName, &u.Fingerprint, &u.PublicKey, &u.PrivateKey, &created); err != nil {
		return nil, err
	}
	u.Created = time.Unix(created, 0)
	return &u, nil
}

// UserByAddress finds a local user by normalised address.
func (s *Store) UserByAddress(ctx context.Context, address string) (*User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE address = ?`, strings.ToLower(address)))
	return u, notFound(err, "user "+address)
}

// UserByHash finds a local user by address hash.
func (s *Store) UserByHash(ctx context.Context, hash string) (*User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE address_hash = ?`, hash))
	return u, notFound(err, "user hash "+hash)
}

// UserByID finds a local user by id.
func (s *Store) UserByID(ctx context.Context, id int64) (*User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	return u, notFound(err, fmt.Sprintf("user %d", id))
}

// UserByWKDName finds a local user by "domain/hash" WKD name.
func (s *Store) UserByWKDName(ctx context.Context, name string) (*User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE wkd_name = ?`, name))
	return u, notFound(err, "user "+name)
}

// Users lists every local user, by address.
func (s *Store) Users(ctx context.Context) ([]*User, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY address`)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	defer rows.Close()
	var us []*User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("users: %w", err)
		}
		us = append(us, u)
	}
	return us, rows.Err()
}

// Allow puts senderHash on the user's allow list: its tickets need no work.
func (s *Store) Allow(ctx context.Context, userID int64, senderHash string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO allow_list (user_id, sender_hash) VALUES (?, ?) ON CONFLICT DO NOTHING`, userID, senderHash)
		return err
	})
}

// NoteCorrespondent records that the user wrote to peerHash, so mail back
// from that address is trusted.
func (s *Store) NoteCorrespondent(ctx context.Context, userID int64, peerHash string) error {
	return s.laxTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO correspondents (user_id, peer_hash, last) VALUES (?, ?, ?)
			 ON CONFLICT (user_id, peer_hash) DO UPDATE SET last = excluded.last`, userID, peerHash, s.unix())
		return err
	})
}

// Trusts reports whether mail from senderHash to the user needs no work:
// the sender is on the user's allow list or the user has written to it.
func (s *Store) Trusts(ctx context.Context, userID int64, senderHash string) (bool, error) {
	var n int
	err := s.read.QueryRowContext(ctx,
		`SELECT (SELECT COUNT(*) FROM allow_list WHERE user_id = ?1 AND sender_hash = ?2)
		      + (SELECT COUNT(*) FROM correspondents WHERE user_id = ?1 AND peer_hash = ?2)`,
		userID, senderHash).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("trust %s: %w", senderHash, err)
	}
	return n > 0, nil
}
