package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrKeyChanged is returned by UpdateKeys when the user's stored key
// changed since it was read (another passwd, recover or rotate-key ran).
var ErrKeyChanged = errors.New("the key changed meanwhile; try again")

// KeyUpdate is a user's new stored key material.
type KeyUpdate struct {
	Fingerprint string // of the (new) current key
	PublicKey   []byte
	PrivateKey  []byte // protected with the password
	RecoveryKey []byte // protected with the recovery code
	RetiredKeys []byte // sealed to the current key
}

// UpdateKeys replaces the user's stored key material, if its generation is
// still gen, and bumps the generation so that sessions logged in with the
// old material end (KeyGeneration).
func (s *Store) UpdateKeys(ctx context.Context, userID, gen int64, k KeyUpdate) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE users SET fingerprint = ?, public_key = ?, private_key = ?, recovery_key = ?, retired_keys = ?,
			 key_generation = key_generation + 1 WHERE id = ? AND key_generation = ?`,
			k.Fingerprint, k.PublicKey, k.PrivateKey, k.RecoveryKey, orEmpty(k.RetiredKeys), userID, gen)
		if err != nil {
			return fmt.Errorf("user %d: keys: %w", userID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("user %d: %w", userID, ErrKeyChanged)
		}
		return nil
	})
}

func orEmpty(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// KeyGeneration is the user's current key generation; ErrNotFound when
// the user was removed. Sessions compare it with the one they logged in
// with, so a password change made by another process ends them.
func (s *Store) KeyGeneration(ctx context.Context, userID int64) (int64, error) {
	var gen int64
	err := s.queryReadRow(ctx, `SELECT key_generation FROM users WHERE id = ?`, userID).Scan(&gen)
	return gen, notFound(err, fmt.Sprintf("user %d", userID))
}

// Removal is what RemoveUser deleted or changed.
type Removal struct {
	Messages       int      // stored messages deleted
	Queued         int      // outbox deliveries dropped (from or to the user)
	Tickets        int      // tickets for the user deleted
	AliasesChanged []string // stored aliases that lost the user as a target
	AliasesDeleted []string // stored aliases whose only target was the user
}

// RemoveUser deletes a local user with their keys, mail, mailboxes,
// tickets, allow list, correspondents and queued deliveries from or to
// them, and takes them out of stored aliases (an alias left with no target
// is deleted). The encrypted parts lose their references and are swept.
func (s *Store) RemoveUser(ctx context.Context, userID int64) (*Removal, error) {
	r := &Removal{}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var addr string
		if err := tx.QueryRowContext(ctx, `SELECT address FROM users WHERE id = ?`, userID).Scan(&addr); err != nil {
			return notFound(err, fmt.Sprintf("user %d", userID))
		}
		steps := []func() error{
			func() error { return removeMail(ctx, tx, userID, r) },
			func() error { return removeQueued(ctx, tx, userID, addr, r) },
			func() error { return removeFromAliases(ctx, tx, addr, r) },
			func() error {
				res, err := tx.ExecContext(ctx, `DELETE FROM tickets WHERE user_id = ?`, userID)
				r.Tickets = affected(res, err)
				return err
			},
			func() error {
				_, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, userID)
				return err
			},
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return fmt.Errorf("remove %s: %w", addr, err)
			}
		}
		return nil
	})
	return r, err
}

func affected(res sql.Result, err error) int {
	if err != nil {
		return 0
	}
	n, _ := res.RowsAffected()
	return int(n)
}

// removeMail deletes the user's messages and mailboxes. Mailbox entries
// go first: they reference messages without cascading.
func removeMail(ctx context.Context, tx *sql.Tx, userID int64, r *Removal) error {
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE user_id = ?`, userID).Scan(&r.Messages); err != nil {
		return err
	}
	for _, q := range []string{
		`DELETE FROM mailbox_messages WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE user_id = ?)`,
		`DELETE FROM messages WHERE user_id = ?`,
		`DELETE FROM mailboxes WHERE user_id = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, userID); err != nil {
			return err
		}
	}
	return nil
}

// removeQueued drops the user's outgoing mail and pending deliveries to
// them, and outbox entries left with no recipient.
func removeQueued(ctx context.Context, tx *sql.Tx, userID int64, addr string, r *Removal) error {
	var toUser []int64
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT outbox_id FROM outbox_recipients WHERE done = 0 AND recipient = ?`, addr)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		toUser = append(toUser, id)
	}
	rows.Close()
	res, err := tx.ExecContext(ctx,
		`DELETE FROM outbox_recipients WHERE done = 0 AND (recipient = ? OR outbox_id IN (SELECT id FROM outbox WHERE user_id = ?))`,
		addr, userID)
	r.Queued = affected(res, err)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE user_id = ?`, userID); err != nil {
		return err
	}
	for _, id := range toUser {
		_, err := tx.ExecContext(ctx,
			`DELETE FROM outbox WHERE id = ? AND NOT EXISTS (SELECT 1 FROM outbox_recipients WHERE outbox_id = ? AND done = 0)`, id, id)
		if err != nil {
			return err
		}
	}
	return nil
}

// removeFromAliases takes addr out of every stored alias's targets.
func removeFromAliases(ctx context.Context, tx *sql.Tx, addr string, r *Removal) error {
	rows, err := tx.QueryContext(ctx, `SELECT `+aliasColumns+` FROM aliases`)
	if err != nil {
		return err
	}
	var hit []*Alias
	for rows.Next() {
		a, err := scanAlias(rows)
		if err != nil {
			rows.Close()
			return err
		}
		if slices.Contains(a.Targets, addr) {
			hit = append(hit, a)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, a := range hit {
		rest := slices.DeleteFunc(a.Targets, func(t string) bool { return t == addr })
		if len(rest) == 0 {
			r.AliasesDeleted = append(r.AliasesDeleted, a.Address)
			_, err = tx.ExecContext(ctx, `DELETE FROM aliases WHERE address = ?`, a.Address)
		} else {
			r.AliasesChanged = append(r.AliasesChanged, a.Address)
			_, err = tx.ExecContext(ctx, `UPDATE aliases SET targets = ? WHERE address = ?`, strings.Join(rest, "\n"), a.Address)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Trust is one reason a sender's signed ticket requests need no work for a
// user: an allow-list entry or a correspondent the user wrote to.
type Trust struct {
	Kind    string // "allow" or "correspondent"
	Hash    string // the sender's address hash
	Address string // plain, normalised; "" for entries kept before addresses were
	When    time.Time
}

// Trusts lists a user's allow list and correspondents, allow list first,
// each by address.
func (s *Store) Trusts(ctx context.Context, userID int64) ([]Trust, error) {
	rows, err := s.read.QueryContext(ctx,
		`SELECT 'allow', sender_hash, sender_address, added FROM allow_list WHERE user_id = ?1
		 UNION ALL
		 SELECT 'correspondent', peer_hash, peer_address, last FROM correspondents WHERE user_id = ?1
		 ORDER BY 1, 3, 2`, userID)
	if err != nil {
		return nil, fmt.Errorf("user %d: trust: %w", userID, err)
	}
	defer rows.Close()
	var ts []Trust
	for rows.Next() {
		var t Trust
		var when int64
		if err := rows.Scan(&t.Kind, &t.Hash, &t.Address, &when); err != nil {
			return nil, fmt.Errorf("user %d: trust: %w", userID, err)
		}
		t.When = time.Unix(when, 0)
		ts = append(ts, t)
	}
	return ts, rows.Err()
}

// Distrust removes senderHash from the user's allow list and
// correspondents and reports how many entries went; ErrNotFound when
// there were none.
func (s *Store) Distrust(ctx context.Context, userID int64, senderHash string) (int, error) {
	n := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM allow_list WHERE user_id = ? AND sender_hash = ?`,
			`DELETE FROM correspondents WHERE user_id = ? AND peer_hash = ?`,
		} {
			res, err := tx.ExecContext(ctx, q, userID, senderHash)
			if err != nil {
				return fmt.Errorf("distrust %s: %w", senderHash, err)
			}
			n += affected(res, nil)
		}
		if n == 0 {
			return fmt.Errorf("distrust %s: %w", senderHash, ErrNotFound)
		}
		return nil
	})
	return n, err
}
