package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// TicketedEvidence is what the store knows that says a domain speaks the
// ticketed protocol.
type TicketedEvidence struct {
	Endpoint      string    // ticket API last delivered to; "" if never
	LastDelivered time.Time // zero if never
	PinnedKeys    int       // keys pinned for addresses at the domain
}

// Any reports whether there is any evidence at all.
func (e TicketedEvidence) Any() bool { return e.Endpoint != "" || e.PinnedKeys > 0 }

// RecordTicketedDelivery notes that domain took a message over the
// ticketed protocol at endpoint. Its commit skips the fsync: the outbox
// records the delivery's outcome right after, durably, in the next one.
func (s *Store) RecordTicketedDelivery(ctx context.Context, domain, endpoint string) error {
	now := s.unix()
	err := s.laxTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO ticketed_domains (domain, endpoint, first_delivered, last_delivered) VALUES (?, ?, ?, ?)
			 ON CONFLICT (domain) DO UPDATE SET endpoint = excluded.endpoint, last_delivered = excluded.last_delivered`,
			strings.ToLower(domain), endpoint, now, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("record ticketed domain %s: %w", domain, err)
	}
	return nil
}

// TicketedEvidence returns what the store knows about domain: ticketed
// deliveries to it and keys pinned for its addresses.
func (s *Store) TicketedEvidence(ctx context.Context, domain string) (TicketedEvidence, error) {
	domain = strings.ToLower(domain)
	var e TicketedEvidence
	var last int64
	err := s.read.QueryRowContext(ctx, `SELECT endpoint, last_delivered FROM ticketed_domains WHERE domain = ?`, domain).Scan(&e.Endpoint, &last)
	switch {
	case err == nil:
		e.LastDelivered = time.Unix(last, 0)
	case !errors.Is(err, sql.ErrNoRows):
		return e, fmt.Errorf("ticketed domain %s: %w", domain, err)
	}
	// Addresses are stored lowercased, domain in ASCII; substr counts
	// characters, hence the rune count. (A negative start is SQLite's
	// only, so the start is counted from the length.)
	suffix := "@" + domain
	err = s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM pinned_keys WHERE substr(address, length(address) - ? + 1) = ?`,
		utf8.RuneCountInString(suffix), suffix).Scan(&e.PinnedKeys)
	if err != nil {
		return e, fmt.Errorf("pinned keys at %s: %w", domain, err)
	}
	return e, nil
}
