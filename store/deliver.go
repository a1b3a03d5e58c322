package store

import (
	"context"
	"database/sql"
	"fmt"
)

// DeliverMessages stores sealed messages for several users (one accepted
// message to several local recipients) in one transaction: all or none.
func (s *Store) DeliverMessages(ctx context.Context, ms []*NewMessage) ([]*Delivered, error) {
	var out []*Delivered
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		for _, m := range ms {
			d, err := s.insertMessage(ctx, tx, m)
			if err != nil {
				return fmt.Errorf("user %d: %w", m.UserID, err)
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("deliver: %w", err)
	}
	for _, d := range out {
		s.publish(d.event())
	}
	return out, nil
}
