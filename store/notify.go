package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Changes published on one node reach the Hubs of the others through
// PostgreSQL's LISTEN/NOTIFY: publish sends each event on a channel named
// after the store's schema, and every node's listener (started by Open)
// publishes what the others sent to its own Hub. An event lost while a
// listener reconnects is seen at the sessions' next look at the store, as
// an event dropped by a full Hub buffer is.

// notifier is a PostgreSQL store's link to the other nodes.
type notifier struct {
	channel string // quoted for LISTEN
	name    string // as pg_notify takes it
	stop    context.CancelFunc
	done    sync.WaitGroup
}

// publish hands an event to this process's subscribers and, on
// PostgreSQL, to the other nodes'.
func (s *Store) publish(e Event) {
	s.hub.publish(e)
	if s.notify == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	payload := fmt.Sprintf("%s %d %d %d %d", s.node, e.Kind, e.UserID, e.MailboxID, e.UID)
	if _, err := s.write.ExecContext(ctx, `SELECT pg_notify(?, ?)`, s.notify.name, payload); err != nil {
		// Other nodes' sessions see the change at their next look.
		return
	}
}

// parseEvent reads a notification's payload; ok is false for this node's
// own events and for anything malformed.
func parseEvent(payload, self string) (Event, bool) {
	var e Event
	var node string
	if _, err := fmt.Sscanf(payload, "%s %d %d %d %d", &node, &e.Kind, &e.UserID, &e.MailboxID, &e.UID); err != nil {
		return e, false
	}
	return e, node != self
}

// listen connects to dsn, listens on the store's channel and feeds the
// Hub until Close. The first LISTEN happens before listen returns, so an
// event published by another node after Open returned is not missed.
func (s *Store) listen(ctx context.Context, dsn string) error {
	var schema string
	if err := s.read.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	name := "tollbridge_" + schema
	n := &notifier{channel: pgx.Identifier{name}.Sanitize(), name: name}
	conn, err := s.listenConn(ctx, dsn, n.channel)
	if err != nil {
		return err
	}
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	n.stop = stop
	s.notify = n
	n.done.Add(1)
	go func() {
		defer n.done.Done()
		s.listenLoop(lctx, dsn, conn)
	}()
	return nil
}

func (s *Store) listenConn(ctx context.Context, dsn, channel string) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("listen: %w", err)
	}
	return conn, nil
}

// listenLoop waits for notifications, reconnecting (once a second at
// most) when the connection fails, until ctx ends.
func (s *Store) listenLoop(ctx context.Context, dsn string, conn *pgx.Conn) {
	for ctx.Err() == nil {
		if conn == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			c, err := s.listenConn(ctx, dsn, s.notify.channel)
			if err != nil {
				continue
			}
			conn = c
		}
		msg, err := conn.WaitForNotification(ctx)
		if err != nil {
			conn.Close(context.Background())
			conn = nil
			continue
		}
		if e, ok := parseEvent(msg.Payload, s.node); ok {
			s.hub.publish(e)
		}
	}
	if conn != nil {
		conn.Close(context.Background())
	}
}

// stopListening ends the listener, if any.
func (s *Store) stopListening() {
	if s.notify != nil {
		s.notify.stop()
		s.notify.done.Wait()
	}
}
