package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
)

// Subscriptions to lists (docs/protocol.md §3.2.1). The subscriber's
// server mints an id when its user subscribes and offers it to the list's
// server, which holds it and names it in its ticket requests to that user.

// Subscribe returns the live subscription id of user to the list at
// listAddress (whose address hash is listHash), minting one when there is
// none. Minting twice keeps the first id.
func (s *Store) Subscribe(ctx context.Context, userID int64, listAddress, listHash string) (string, error) {
	var id string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		err := s.queryRowW(ctx, tx,
			`SELECT id FROM minted_subscriptions WHERE user_id = ? AND list_hash = ? AND revoked = 0 ORDER BY created LIMIT 1`,
			userID, listHash).Scan(&id)
		if err == nil || !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		id = newSubscriptionID()
		_, err = s.execW(ctx, tx,
			`INSERT INTO minted_subscriptions (id, user_id, list_address, list_hash, created) VALUES (?, ?, ?, ?, ?)`,
			id, userID, listAddress, listHash, s.unix())
		return err
	})
	if err != nil {
		return "", fmt.Errorf("subscribe user %d to %s: %w", userID, listAddress, err)
	}
	return id, nil
}

// newSubscriptionID is "s_" and 128 random bits in hex: unguessable, since
// the id (with the list server's signature) is what earns a no-work ticket.
func newSubscriptionID() string {
	var b [16]byte
	rand.Read(b[:])
	return "s_" + hex.EncodeToString(b[:])
}

// Unsubscribe revokes every live subscription of user to the list whose
// address hash is listHash and says how many there were.
func (s *Store) Unsubscribe(ctx context.Context, userID int64, listHash string) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := s.execW(ctx, tx,
			`UPDATE minted_subscriptions SET revoked = 1 WHERE user_id = ? AND list_hash = ? AND revoked = 0`,
			userID, listHash)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("unsubscribe user %d from %s: %w", userID, listHash, err)
	}
	return n, nil
}

// MintedSubscription looks up an id this server minted. It returns the
// list address when id is live, belongs to user and to the list whose
// address hash is senderHash; "" otherwise. minted says whether the id
// was ever minted here (revoked or not, for any user).
func (s *Store) MintedSubscription(ctx context.Context, id string, userID int64, senderHash string) (listAddress string, minted bool, err error) {
	var (
		uid     int64
		hash    string
		revoked bool
	)
	err = s.read.QueryRowContext(ctx,
		`SELECT user_id, list_address, list_hash, revoked FROM minted_subscriptions WHERE id = ?`, id).
		Scan(&uid, &listAddress, &hash, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("subscription %s: %w", id, err)
	}
	if uid != userID || hash != senderHash || revoked {
		return "", true, nil
	}
	return listAddress, true, nil
}

// HoldSubscription keeps the id a subscriber's server (of peerDomain)
// offered for the subscriber peerHash to the local user (the list); a new
// offer replaces the old one.
func (s *Store) HoldSubscription(ctx context.Context, userID int64, peerHash, peerDomain, id string) error {
	err := s.laxTx(ctx, func(tx *sql.Tx) error {
		_, err := s.execW(ctx, tx,
			`INSERT INTO held_subscriptions (user_id, peer_hash, peer_domain, id, created) VALUES (?, ?, ?, ?, ?)
			 ON CONFLICT (user_id, peer_hash) DO UPDATE SET peer_domain = excluded.peer_domain, id = excluded.id, created = excluded.created`,
			userID, peerHash, peerDomain, id, s.unix())
		return err
	})
	if err != nil {
		return fmt.Errorf("hold subscription %s: %w", id, err)
	}
	return nil
}

// HeldSubscription is the id the local user (a list) holds for mail to
// peerHash at peerDomain; "" when none.
func (s *Store) HeldSubscription(ctx context.Context, userID int64, peerHash, peerDomain string) (string, error) {
	var id string
	err := s.read.QueryRowContext(ctx,
		`SELECT id FROM held_subscriptions WHERE user_id = ? AND peer_hash = ? AND peer_domain = ?`,
		userID, peerHash, peerDomain).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("held subscription for %s: %w", peerHash, err)
	}
	return id, nil
}
