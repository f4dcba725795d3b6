package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"time"
)

// conn runs statements on a database or inside a transaction. The SQLite and PostgreSQL
// drivers each provide one; queries use $1-style parameters, which both understand, and
// time.Time arguments, the zero time standing for NULL.
type conn interface {
	// exec runs a statement and returns the number of rows it affected.
	exec(ctx context.Context, q string, args ...any) (int64, error)
	// query runs q and calls row for every result row.
	query(ctx context.Context, q string, args []any, row func(scan func(dest ...any) error) error) error
}

// dialect is a database: its connection pool and what differs between the two databases
// beyond their drivers.
type dialect interface {
	conn
	// inTx runs fn in a transaction, committing when it returns nil.
	inTx(ctx context.Context, fn func(tx conn) error) error
	// lock serialises the transactions that take the same named lock until they end. Call
	// it first in a transaction.
	lock(ctx context.Context, tx conn, name string) error
	// erased runs after descriptors were deleted, to push deleted pages out of logs the
	// database keeps on disk.
	erased(ctx context.Context) error
	// isUnique reports whether err is a unique-constraint violation.
	isUnique(err error) bool
	// isForeignKey reports whether err is a foreign-key violation.
	isForeignKey(err error) bool
	// down reports whether err says the database cannot be reached or cannot serve now.
	down(err error) bool
	ping(ctx context.Context) error
	close() error
}

// timeArgs returns args with the zero time as NULL and every other time.Time as the
// driver stores it (value).
func timeArgs(args []any, value func(time.Time) any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		if t, ok := a.(time.Time); ok {
			if t.IsZero() {
				a = nil
			} else {
				a = value(t)
			}
		}
		out[i] = a
	}
	return out
}

// rows is what both drivers' result sets offer.
type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// eachRow calls row for every row of rs and returns the first error.
func eachRow(rs rows, row func(scan func(...any) error) error) error {
	for rs.Next() {
		if err := row(rs.Scan); err != nil {
			return err
		}
	}
	return rs.Err()
}

// timeCol scans a timestamp column: SQLite holds Unix microseconds, PostgreSQL timestamptz.
// NULL scans as the zero time.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	case time.Time:
		*c.t = v.UTC()
	default:
		return fmt.Errorf("scan time: unexpected %T", v)
	}
	return nil
}

// idCol scans a nullable user id column; NULL is 0.
type idCol struct{ id *int64 }

func (c idCol) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.id = 0
	case int64:
		*c.id = v
	case int32:
		*c.id = int64(v)
	default:
		return fmt.Errorf("scan id: unexpected %T", v)
	}
	return nil
}

// nullID is a user id argument: 0 is stored as NULL.
func nullID(id int64) driver.Value {
	if id == 0 {
		return nil
	}
	return id
}

// micros truncates t to the microsecond both databases keep.
func micros(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Truncate(time.Microsecond).UTC()
}

// queryRow runs q on c and returns its row as read by scanRow; found is false when q
// returned no row. Queries select by a unique key, so there is at most one.
func queryRow[T any](ctx context.Context, c conn, q string, args []any, scanRow func(scan func(...any) error) (T, error)) (v T, found bool, err error) {
	err = c.query(ctx, q, args, func(scan func(...any) error) error {
		var err error
		v, err = scanRow(scan)
		found = true
		return err
	})
	return v, found, err
}

// queryAll runs q on c and returns its rows as read by scanRow.
func queryAll[T any](ctx context.Context, c conn, q string, args []any, scanRow func(scan func(...any) error) (T, error)) ([]T, error) {
	var vs []T
	err := c.query(ctx, q, args, func(scan func(...any) error) error {
		v, err := scanRow(scan)
		vs = append(vs, v)
		return err
	})
	if err != nil {
		return nil, err
	}
	return vs, nil
}

// scanOne runs q on c and scans its single row into dest; ErrNotFound when there is none.
func scanOne(ctx context.Context, c conn, q string, args []any, dest ...any) error {
	_, found, err := queryRow(ctx, c, q, args, func(scan func(...any) error) (struct{}, error) {
		return struct{}{}, scan(dest...)
	})
	if err == nil && !found {
		err = ErrNotFound
	}
	return err
}

// count runs q, a "select count(*)", on c.
func count(ctx context.Context, c conn, q string, args ...any) (int, error) {
	var n int64
	err := scanOne(ctx, c, q, args, &n)
	return int(n), err
}
