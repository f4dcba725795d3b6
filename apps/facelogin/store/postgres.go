package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/seal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// openPostgres connects a pool to dsn (a postgres:// URL; libpq parameters such as
// sslmode or search_path may be given as query parameters).
func openPostgres(ctx context.Context, dsn string, keys *seal.Keyring) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres store %s: %w", redactDSN(dsn), err)
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

func (d *pgDB) ping(ctx context.Context) error { return d.pool.Ping(ctx) }

func (d *pgDB) close() error {
	d.pool.Close()
	return nil
}
