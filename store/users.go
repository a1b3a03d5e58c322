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
	AddressHash string // hash(a) of docs/protocol.md §3.6
	WKDName     string // "domain/hash" of the user's Web Key Directory entry
	Fingerprint string // primary key v4 fingerprint, lowercase hex
	PublicKey   []byte // binary transferable public key
	PrivateKey  []byte // passphrase-protected binary secret key
	RecoveryKey []byte // the same key protected with the recovery code; nil for older users
	RetiredKeys []byte // rotated-out keys sealed to the current one (keyring.SealRetired)
	Generation  int64  // grows with every change of the stored key (see UpdateKeys)
	Created     time.Time
}

// DefaultMailboxes are created, and subscribed, with every user, with
// their SPECIAL-USE attribute (RFC 6154); INBOX has none.
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
		err := tx.QueryRowContext(ctx,
			`INSERT INTO users (address, address_hash, wkd_name, fingerprint, public_key, private_key, recovery_key, retired_keys, created)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id`,
			u.Address, u.AddressHash, u.WKDName, u.Fingerprint, u.PublicKey, u.PrivateKey, u.RecoveryKey, orEmpty(u.RetiredKeys), u.Created.Unix()).Scan(&u.ID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("user %s: %w", u.Address, ErrExists)
		}
		if err != nil {
			return fmt.Errorf("user %s: %w", u.Address, err)
		}
		for _, m := range DefaultMailboxes {
			if _, err := s.createMailbox(ctx, tx, u.ID, m.Name, m.SpecialUse); err != nil {
				return fmt.Errorf("user %s: mailbox %s: %w", u.Address, m.Name, err)
			}
			if err := subscribeTx(ctx, tx, u.ID, m.Name); err != nil {
				return fmt.Errorf("user %s: subscribe %s: %w", u.Address, m.Name, err)
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
	if err := s.queryRowW(ctx, tx, `SELECT uid_validity_seq FROM users WHERE id = ?`, userID).Scan(&last); err != nil {
		return 0, err
	}
	v := max(s.unix(), last+1) & 0xffffffff
	if _, err := s.execW(ctx, tx, `UPDATE users SET uid_validity_seq = ? WHERE id = ?`, v, userID); err != nil {
		return 0, err
	}
	var id int64
	err := tx.QueryRowContext(ctx,
		`INSERT INTO mailboxes (user_id, name, special_use, uid_validity) VALUES (?, ?, ?, ?) RETURNING id`,
		userID, name, specialUse, v).Scan(&id)
	return id, err
}

const userColumns = `id, address, address_hash, wkd_name, fingerprint, public_key, private_key, recovery_key, retired_keys, key_generation, created`

func scanUser(row interface{ Scan(...any) error }) (*User, error) {
	var u User
	var created int64
	if err := row.Scan(&u.ID, &u.Address, &u.AddressHash, &u.WKDName, &u.Fingerprint, &u.PublicKey, &u.PrivateKey, &u.RecoveryKey, &u.RetiredKeys, &u.Generation, &created); err != nil {
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
	return queryAll(ctx, s.read, "users", scanUser, `SELECT `+userColumns+` FROM users ORDER BY address`)
}

// queryAll runs a query on db and scans every row it returns with scan;
// what names the rows in errors.
func queryAll[T any](ctx context.Context, db *sql.DB, what string, scan func(interface{ Scan(...any) error }) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// Allow puts sender (a normalised address, hashed as senderHash) on the
// user's allow list: its signed ticket requests need no work.
func (s *Store) Allow(ctx context.Context, userID int64, senderHash, sender string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO allow_list (user_id, sender_hash, sender_address, added) VALUES (?, ?, ?, ?)
			 ON CONFLICT (user_id, sender_hash) DO UPDATE SET sender_address = excluded.sender_address`, userID, senderHash, sender, s.unix())
		return err
	})
}

// Correspondent is an address a local user wrote to, by hash and as the
// plain (normalised) address.
type Correspondent struct {
	Hash    string
	Address string
}

// NoteCorrespondent records that the user wrote to peer, so signed mail
// back from that address is trusted.
func (s *Store) NoteCorrespondent(ctx context.Context, userID int64, peer Correspondent) error {
	return s.laxTx(ctx, func(tx *sql.Tx) error {
		return noteCorrespondent(ctx, tx, userID, peer, s.unix())
	})
}

func noteCorrespondent(ctx context.Context, tx *sql.Tx, userID int64, peer Correspondent, now int64) error {
	_, err := tx.ExecContext(ctx,
		`INSERT INTO correspondents (user_id, peer_hash, peer_address, last) VALUES (?, ?, ?, ?)
		 ON CONFLICT (user_id, peer_hash) DO UPDATE SET last = excluded.last, peer_address = excluded.peer_address`,
		userID, peer.Hash, peer.Address, now)
	return err
}

// TrustedAddress returns the plain address behind senderHash when the
// sender is on the user's allow list or the user has written to it, and
// "" otherwise (also for entries noted before plain addresses were kept).
// The ticket API grants a no-work ticket only to a signed request from
// that address's domain (docs/protocol.md §3.7).
func (s *Store) TrustedAddress(ctx context.Context, userID int64, senderHash string) (string, error) {
	var addr string
	err := s.read.QueryRowContext(ctx,
		`SELECT sender_address FROM allow_list WHERE user_id = ?1 AND sender_hash = ?2 AND sender_address != ''
		 UNION ALL
		 SELECT peer_address FROM correspondents WHERE user_id = ?1 AND peer_hash = ?2 AND peer_address != ''
		 LIMIT 1`,
		userID, senderHash).Scan(&addr)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("trust %s: %w", senderHash, err)
	}
	return addr, nil
}
