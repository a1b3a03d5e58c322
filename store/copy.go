package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// copyTables are the tables CopyTo copies, parents before children (the
// foreign keys are checked row by row). A migration that adds a table
// adds it here; TestCopyToCoversEveryTable fails until it does.
var copyTables = []string{
	"users", "allow_list", "correspondents", "pinned_keys",
	"blobs", "tickets", "ticket_proofs", "ticket_uploads",
	"messages", "message_blobs", "mailboxes", "mailbox_messages", "mailbox_expunged",
	"subscriptions", "import_marks", "minted_subscriptions", "held_subscriptions",
	"outbox", "outbox_blobs", "outbox_recipients", "deliveries",
	"seen_requests", "ticketed_domains", "aliases", "subaddresses",
}

// identityTables have an id column that PostgreSQL numbers itself: after
// a copy with the ids kept, its sequence continues above them.
var identityTables = []string{"users", "messages", "mailboxes", "outbox", "outbox_recipients", "deliveries"}

// CopyCount is one table's rows in the source and in the destination
// after CopyTo.
type CopyCount struct {
	Table    string
	From, To int64
}

// CopyTo copies everything in s into dst, which must be empty (no users,
// no messages, no queue): users and keys, mail with its flags, UIDs,
// UIDVALIDITY and modseqs (mail clients need no resync), the outbox, the
// tickets, and every sealed part (blob) the rows name. The rows go in one
// transaction of dst, after the blobs; blob reference counts are rebuilt
// by dst's own triggers. It returns the row counts of both sides, checked
// equal (an error names the first that is not).
func (s *Store) CopyTo(ctx context.Context, dst *Store) ([]CopyCount, error) {
	for _, t := range []string{"users", "messages", "outbox", "tickets"} {
		if n, err := dst.countRows(ctx, t); err != nil || n != 0 {
			return nil, fmt.Errorf("copy: the destination must be empty (%s: %d rows, %v)", t, n, err)
		}
	}
	if err := s.copyBlobs(ctx, dst); err != nil {
		return nil, err
	}
	err := dst.tx(ctx, func(tx *sql.Tx) error {
		for _, t := range copyTables {
			if err := s.copyTable(ctx, tx, t); err != nil {
				return fmt.Errorf("copy %s: %w", t, err)
			}
		}
		return dst.resetIdentities(ctx, tx)
	})
	if err != nil {
		return nil, err
	}
	return s.compareCounts(ctx, dst)
}

// copyBlobs copies every blob the blobs table names; one already in dst
// (the same bucket, or a rerun) is not sent again.
func (s *Store) copyBlobs(ctx context.Context, dst *Store) error {
	rows, err := s.read.QueryContext(ctx, `SELECT hash, size FROM blobs ORDER BY hash`)
	if err != nil {
		return fmt.Errorf("copy blobs: %w", err)
	}
	var refs []BlobRef
	for rows.Next() {
		var r BlobRef
		if err := rows.Scan(&r.Hash, &r.Size); err != nil {
			rows.Close()
			return fmt.Errorf("copy blobs: %w", err)
		}
		refs = append(refs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("copy blobs: %w", err)
	}
	for _, ref := range refs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.copyBlob(dst, ref); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) copyBlob(dst *Store, ref BlobRef) error {
	if err := dst.blobs.Sync(ref); err == nil {
		return nil
	}
	r, err := s.blobs.Open(ref.Hash)
	if errors.Is(err, ErrNotFound) {
		// An unreferenced blob the sweeper removed: its row goes along
		// (with no references) and is swept there too.
		return nil
	}
	if err != nil {
		return fmt.Errorf("copy blob %s: %w", ref.Hash, err)
	}
	defer r.Close()
	got, err := dst.blobs.Put(r)
	if err != nil {
		return fmt.Errorf("copy blob %s: %w", ref.Hash, err)
	}
	if got.Hash != ref.Hash || got.Size != ref.Size {
		return fmt.Errorf("copy blob %s: read back as %s (%d bytes, want %d)", ref.Hash, got.Hash, got.Size, ref.Size)
	}
	return nil
}

// copyTable copies one table's rows as they are, but blobs' reference
// counts, which dst's triggers count again as the referencing rows come.
func (s *Store) copyTable(ctx context.Context, tx *sql.Tx, table string) error {
	rows, err := s.read.QueryContext(ctx, `SELECT * FROM `+table)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	binary, err := s.binaryColumns(ctx, table)
	if err != nil {
		return err
	}
	insert := `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) VALUES (` +
		strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + `)`
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for i, c := range cols {
			vals[i] = convertValue(vals[i], binary[c])
			if table == "blobs" && c == "refs" {
				vals[i] = int64(0)
			}
		}
		if _, err := tx.ExecContext(ctx, insert, vals...); err != nil {
			return err
		}
	}
	return rows.Err()
}

// binaryColumns names the table's BLOB columns in s, so their values go
// to dst as bytes and the others as text (SQLite hands back either kind
// for either type).
func (s *Store) binaryColumns(ctx context.Context, table string) (map[string]bool, error) {
	q := `SELECT name FROM pragma_table_info(?) WHERE upper(type) = 'BLOB'`
	if s.dialect == postgresDialect {
		q = `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? AND data_type = 'bytea'`
	}
	rows, err := s.read.QueryContext(ctx, q, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out[c] = true
	}
	return out, rows.Err()
}

// convertValue gives a scanned value the Go type the destination column
// takes.
func convertValue(v any, binary bool) any {
	switch x := v.(type) {
	case string:
		if binary {
			return []byte(x)
		}
	case []byte:
		if !binary {
			return string(x)
		}
		// A zero-length blob is not NULL (that is a nil any).
		return append([]byte{}, x...)
	case bool:
		return int64(boolInt(x))
	}
	return v
}

// resetIdentities moves PostgreSQL's id sequences past the copied ids.
func (s *Store) resetIdentities(ctx context.Context, tx *sql.Tx) error {
	if s.dialect != postgresDialect {
		return nil
	}
	for _, t := range identityTables {
		if _, err := tx.ExecContext(ctx,
			`SELECT setval(pg_get_serial_sequence('`+t+`', 'id'), COALESCE((SELECT MAX(id) FROM `+t+`), 0) + 1, false)`); err != nil {
			return fmt.Errorf("copy %s: id sequence: %w", t, err)
		}
	}
	return nil
}

func (s *Store) countRows(ctx context.Context, table string) (int64, error) {
	var n int64
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n)
	return n, err
}

// compareCounts counts every copied table on both sides.
func (s *Store) compareCounts(ctx context.Context, dst *Store) ([]CopyCount, error) {
	var out []CopyCount
	var bad error
	for _, t := range copyTables {
		c := CopyCount{Table: t}
		var err error
		if c.From, err = s.countRows(ctx, t); err != nil {
			return nil, fmt.Errorf("count %s: %w", t, err)
		}
		if c.To, err = dst.countRows(ctx, t); err != nil {
			return nil, fmt.Errorf("count %s: %w", t, err)
		}
		if c.From != c.To && bad == nil {
			bad = fmt.Errorf("copy %s: %d rows in the source, %d in the destination", t, c.From, c.To)
		}
		out = append(out, c)
	}
	return out, bad
}

// tables lists the store's own tables (not schema_migrations).
func (s *Store) tables(ctx context.Context) ([]string, error) {
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	if s.dialect == postgresDialect {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	}
	rows, err := s.read.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		if n != "schema_migrations" {
			out = append(out, n)
		}
	}
	return out, rows.Err()
}
