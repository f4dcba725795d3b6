package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/seal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Bounds of a PostgreSQL connection unless its DSN sets connect_timeout or
// statement_timeout.
const (
	ConnectTimeout   = 5 * time.Second
	StatementTimeout = 30 * time.Second
)

// openPostgres connects a pool to dsn (a postgres:// URL; libpq parameters such as
// sslmode or search_path may be given as query parameters).
func openPostgres(ctx context.Context, dsn string, keys *seal.Keyring) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres store %s: %w", redactDSN(dsn), err)
	}
	// A server that is down or never answers must not hold a caller: connecting gives up
	// after ConnectTimeout, and the server ends any statement after StatementTimeout
	// (the DSN's connect_timeout and statement_timeout win).
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = ConnectTimeout
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["statement_timeout"]; !ok {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(StatementTimeout.Milliseconds(), 10)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store %s: %w", redactDSN(dsn), err)
	}
	d := &pgDB{pgConn{pool}, pool}
	if err := migrate(ctx, d, postgresTypes); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store %s: %w", redactDSN(dsn), err)
	}
	return newStore(d, keys), nil
}

// pgDB is the PostgreSQL dialect over a pgx pool; its own statements run on the pool.
type pgDB struct {
	pgConn
	pool *pgxpool.Pool
}

// pgxConn is what *pgxpool.Pool and pgx.Tx share.
type pgxConn interface {
	Exec(ctx context.Context, q string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, q string, args ...any) (pgx.Rows, error)
}

type pgConn struct{ c pgxConn }

// pgArgs passes the zero time as NULL.
func pgArgs(args []any) []any {
	return timeArgs(args, func(t time.Time) any { return t })
}

func (c pgConn) exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := c.c.Exec(ctx, q, pgArgs(args)...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (c pgConn) query(ctx context.Context, q string, args []any, row func(scan func(...any) error) error) error {
	rs, err := c.c.Query(ctx, q, pgArgs(args)...)
	if err != nil {
		return err
	}
	defer rs.Close()
	return eachRow(rs, row)
}

func (d *pgDB) inTx(ctx context.Context, fn func(tx conn) error) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error { return fn(pgConn{tx}) })
}

// lock takes a transaction-scoped advisory lock named name in the current schema: the key
// hashes the schema too, so stores in different schemas of one database do not wait for
// each other.
func (d *pgDB) lock(ctx context.Context, tx conn, name string) error {
	_, err := tx.exec(ctx, `select pg_advisory_xact_lock(hashtext($1::text || ':' || current_schema()))`, name)
	return err
}

// erased does nothing on PostgreSQL: deleted rows stay in dead tuples until autovacuum; they
// hold only sealed blobs.
func (d *pgDB) erased(context.Context) error { return nil }

func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func (d *pgDB) isUnique(err error) bool { return pgCode(err) == "23505" }

func (d *pgDB) isForeignKey(err error) bool { return pgCode(err) == "23503" }

// down: the connection failed or broke, or the server refuses work (class 08, connection
// exception; class 57, operator intervention such as a shutdown; 53300, too many
// connections).
func (d *pgDB) down(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	code := pgCode(err)
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		strings.HasPrefix(code, "08") || strings.HasPrefix(code, "57") || code == "53300"
}

func (d *pgDB) ping(ctx context.Context) error { return d.pool.Ping(ctx) }

func (d *pgDB) close() error {
	d.pool.Close()
	return nil
}
