package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Prepared read statements answer as the unprepared queries do, see
// later writes, stay bounded, and are closed with the store.
func TestReadStatements(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	ctx := context.Background()
	u := testUser(t, s, "bob@example.net")
	box, err := s.CreateMailbox(ctx, u.ID, "Box", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.MailboxState(ctx, box.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMailbox(ctx, u.ID, "Box"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MailboxState(ctx, box.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("state of a deleted mailbox: %v", err)
	}
	for i := range maxStmts + 10 {
		var got int
		if err := s.queryReadRow(ctx, fmt.Sprintf("SELECT %d + ?", i), 1).Scan(&got); err != nil || got != i+1 {
			t.Fatalf("query %d: %d, %v", i, got, err)
		}
	}
	if s.dialect == sqliteDialect && len(s.stmts.m) != maxStmts {
		t.Errorf("%d statements kept, want %d", len(s.stmts.m), maxStmts)
	}

	s.Close()
	if len(s.stmts.m) != 0 {
		t.Errorf("%d statements left open after Close", len(s.stmts.m))
	}
}

// Write statements are prepared after the transaction that first ran
// them (the one write connection is busy during it), then reused by
// later transactions, with the same results; one that does not prepare
// keeps failing with its error, never a deadlock; the cache is bounded
// and closed with the store.
func TestWriteStatements(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t)
	ctx := context.Background()
	const ins = `INSERT INTO seen_requests (digest, expires) VALUES (?, ?)`
	for i := range 3 {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			_, err := s.execW(ctx, tx, ins, fmt.Sprintf("h%d", i), 1)
			return err
		})
		if err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
		if s.dialect == sqliteDialect && s.wstmts.m[ins] == nil {
			t.Fatalf("after transaction %d: the statement is not prepared", i)
		}
	}
	var n int
	err := s.tx(ctx, func(tx *sql.Tx) error {
		return s.queryRowW(ctx, tx, `SELECT count(*) FROM seen_requests WHERE expires = ?`, 1).Scan(&n)
	})
	if err != nil || n != 3 {
		t.Fatalf("count = %d, %v; want 3", n, err)
	}
	const bad = `UPDATE no_such_table SET x = 1`
	for i := range 2 {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			_, err := s.execW(ctx, tx, bad)
			return err
		})
		if err == nil || !strings.Contains(err.Error(), "no_such_table") {
			t.Fatalf("bad statement, try %d: %v", i, err)
		}
	}
	for i := range maxStmts + 10 {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			var got int
			return s.queryRowW(ctx, tx, fmt.Sprintf("SELECT %d + ?", i), 1).Scan(&got)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if s.dialect == sqliteDialect && len(s.wstmts.m) > maxStmts {
		t.Errorf("%d write statements kept, want at most %d", len(s.wstmts.m), maxStmts)
	}
	s.Close()
	if len(s.wstmts.m) != 0 {
		t.Errorf("%d write statements left after Close", len(s.wstmts.m))
	}
}
