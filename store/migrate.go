package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// migrations are numbered SQL files, NNNN_name.sql, applied in order, each
// in its own transaction, once. A number is never reused or edited after it
// has shipped; a change to the schema is a new file, in migrations/ for
// SQLite and in migrations/postgres/ for PostgreSQL, with the same name.
//
//go:embed migrations/*.sql migrations/postgres/*.sql
var migrations embed.FS

// migrationDir is where the migrations of a dialect are.
func migrationDir(d dialect) string {
	if d == postgresDialect {
		return "migrations/postgres"
	}
	return "migrations"
}

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations(d dialect) ([]migration, error) {
	dir := migrationDir(d)
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share number %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := migrations.ReadFile(dir + "/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrate applies every migration the database has not had yet, in
// order. (Not just those above the highest applied: numbers are reserved
// in ranges, so a lower one can land after a higher one.)
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations(s.dialect)
	if err != nil {
		return err
	}
	return s.apply(ctx, ms)
}

// apply applies those of ms the database has not had yet.
func (s *Store) apply(ctx context.Context, ms []migration) error {
	if s.dialect == postgresDialect {
		// Nodes started together must not migrate twice: one at a time,
		// each seeing what the one before applied.
		unlock, err := s.pgLock(ctx, "migrate")
		if err != nil {
			return err
		}
		defer unlock()
	}
	if _, err := s.write.ExecContext(ctx,
		`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrations table: %w", err)
	}
	applied, err := s.appliedMigrations(ctx)
	if err != nil {
		return err
	}
	var pending []migration
	for _, m := range ms {
		if !applied[m.version] {
			pending = append(pending, m)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	// All pending migrations in one transaction: a new store commits (and
	// syncs) once instead of once per migration, and a failure leaves the
	// schema as it was, not half way.
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, m := range pending {
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)`, m.version, m.name, s.unix()); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
		}
		return nil
	})
}

func (s *Store) appliedMigrations(ctx context.Context) (map[int]bool, error) {
	rows, err := s.write.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("schema versions: %w", err)
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		applied[v] = true
	}
	return applied, rows.Err()
}

// pgLock takes a PostgreSQL advisory lock named name on a connection of
// its own, held until the returned function is called.
func (s *Store) pgLock(ctx context.Context, name string) (func(), error) {
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(hashtext(?))`, "tollbridge "+name); err != nil {
		conn.Close()
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return func() {
		conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock(hashtext(?))`, "tollbridge "+name)
		conn.Close()
	}, nil
}
