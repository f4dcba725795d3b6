package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/seal"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// openSQLite opens (creating if needed) the SQLite database file at path.
func openSQLite(ctx context.Context, path string, keys *seal.Keyring) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open sqlite store: %q is not a plain file path: use sqlite:/path/to/file.db", path)
	}
	if dir := filepath.Dir(path); dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("open sqlite store: directory %s does not exist: create it or choose another path", dir)
		}
	}
	// The file holds e-mail addresses and password hashes: readable by the owner only.
	// SQLite gives its -wal and -shm files the database file's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	f.Close()
	// busy_timeout first, so the other pragmas wait for a replica opening the file at the
	// same time. secure_delete overwrites deleted rows (erased descriptors) with zeros.
	// _txlock=immediate takes the write lock when a transaction begins, so concurrent writers
	// queue on busy_timeout instead of failing to upgrade a read lock.
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)" +
		"&_pragma=synchronous(NORMAL)&_pragma=secure_delete(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	d := &sqliteDB{sqliteConn{db}, db}
	if err := migrate(ctx, d, sqliteTypes); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	return newStore(d, keys), nil
}

// sqliteDB is the SQLite dialect over database/sql and modernc.org/sqlite; its own
// statements run on the pool.
type sqliteDB struct {
	sqliteConn
	db *sql.DB
}

// sqlConn is what *sql.DB and *sql.Tx share.
type sqlConn interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

type sqliteConn struct{ c sqlConn }

// sqliteArgs stores times as Unix microseconds, the zero time as NULL.
func sqliteArgs(args []any) []any {
	return timeArgs(args, func(t time.Time) any { return t.UnixMicro() })
}

func (c sqliteConn) exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := c.c.ExecContext(ctx, q, sqliteArgs(args)...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (c sqliteConn) query(ctx context.Context, q string, args []any, row func(scan func(...any) error) error) error {
	rs, err := c.c.QueryContext(ctx, q, sqliteArgs(args)...)
	if err != nil {
		return err
	}
	defer rs.Close()
	return eachRow(rs, row)
}

func (d *sqliteDB) inTx(ctx context.Context, fn func(tx conn) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(sqliteConn{tx}); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// lock needs nothing on SQLite: an immediate transaction already excludes other writers.
func (d *sqliteDB) lock(context.Context, conn, string) error { return nil }

// erased checkpoints the write-ahead log into the database file, where secure_delete has
// zeroed the deleted rows, and truncates the log, so the old pages leave the disk too. It is
// best effort: a checkpoint that has to wait for readers finishes on a later write.
func (d *sqliteDB) erased(ctx context.Context) error {
	_, err := d.db.ExecContext(ctx, `pragma wal_checkpoint(TRUNCATE)`)
	return err
}

func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

func (d *sqliteDB) isUnique(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

func (d *sqliteDB) isForeignKey(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// down: another connection held the database longer than busy_timeout.
func (d *sqliteDB) down(err error) bool {
	c := sqliteCode(err) & 0xff
	return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
}

func (d *sqliteDB) ping(ctx context.Context) error { return d.db.PingContext(ctx) }

func (d *sqliteDB) close() error { return d.db.Close() }
