package store

import (
	"context"
	"errors"
	"fmt"
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
