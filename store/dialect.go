package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// The store's SQL is written once, in the common ground of SQLite and
// PostgreSQL, with SQLite's placeholders (? and ?N). What differs is kept
// here and in the migrations:
//   - placeholders are rebound to PostgreSQL's $N by the connections
//     openPostgres makes (rebind), so the queries stay one text;
//   - the schema is written twice: migrations/NNNN_name.sql for SQLite and
//     migrations/postgres/NNNN_name.sql for PostgreSQL (BIGINT, BYTEA,
//     identity columns, triggers as functions);
//   - SQLite serialises writers on one connection with IMMEDIATE
//     transactions; PostgreSQL runs them SERIALIZABLE and retries a
//     transaction that lost a race (txSync), which gives callers the same
//     guarantee: a transaction sees no other's writes half done;
//   - SQLite's synchronous pragma is PostgreSQL's synchronous_commit.
//
// SQL that is SQLite's only (INSERT OR IGNORE, UPDATE OR REPLACE, scalar
// min/max, negative substr, LastInsertId) is not used; instr() exists in
// PostgreSQL as a function made by its first migration.

// dialect names the database behind a Store.
type dialect int

const (
	sqliteDialect dialect = iota
	postgresDialect
)

// openPostgres opens a pool on the PostgreSQL database at dsn whose
// connections take the store's SQLite-style placeholders.
func openPostgres(dsn string, conns int) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db := sql.OpenDB(rebindConnector{stdlib.GetConnector(*cfg)})
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	return db, nil
}

// rebindConnector makes connections that rebind placeholders.
type rebindConnector struct{ driver.Connector }

func (c rebindConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	pc, ok := conn.(*stdlib.Conn)
	if !ok {
		conn.Close()
		return nil, errors.New("postgres: unexpected driver connection")
	}
	return rebindConn{pc}, nil
}

// rebindConn is pgx's database/sql connection with every query's
// placeholders rebound; a query without arguments (a migration, which may
// hold '?' in its text) is passed as it is.
type rebindConn struct{ *stdlib.Conn }

func (c rebindConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	if len(args) > 0 {
		q = rebind(q)
	}
	return c.Conn.ExecContext(ctx, q, boolInts(args))
}

func (c rebindConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	if len(args) > 0 {
		q = rebind(q)
	}
	return c.Conn.QueryContext(ctx, q, boolInts(args))
}

// boolInts stores bools as 0 and 1, as SQLite does: the schema's flags
// are integers in both databases.
func boolInts(args []driver.NamedValue) []driver.NamedValue {
	for i, a := range args {
		if b, ok := a.Value.(bool); ok {
			args[i].Value = int64(boolInt(b))
		}
	}
	return args
}

func (c rebindConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, rebind(q))
}

func (c rebindConn) Prepare(q string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), q)
}

// rebind turns SQLite's placeholders into PostgreSQL's: ?N stays N, and a
// bare ? takes the number after the highest so far (SQLite's rule).
// Quoted strings, quoted names and comments are copied as they are.
func rebind(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	last := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			end := strings.IndexByte(q[i+1:], c)
			if end < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+end+2])
			i += end + 1
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			end := strings.IndexByte(q[i:], '\n')
			if end < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+end+1])
			i += end
		case c == '?':
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			n := last + 1
			if j > i+1 {
				n, _ = strconv.Atoi(q[i+1 : j])
			}
			last = max(last, n)
			b.WriteString("$" + strconv.Itoa(n))
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// retryable reports whether a PostgreSQL transaction failed only because
// it lost a race with another (serialization failure, deadlock) and may
// simply run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return pe.Code == "40001" || pe.Code == "40P01"
}
