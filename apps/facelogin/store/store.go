// Package store persists the face-login app's accounts, face samples, invites, sessions,
// login history and failed attempts, one file per noun. Two databases share the code and one
// test suite: SQLite (modernc.org/sqlite), the embedded single-file default, and PostgreSQL
// (pgx) for the cluster; Open picks one by DSN and applies the schema migrations (schema.go,
// written once for both). Face descriptors are sealed (AES-256-GCM, package seal) and bound
// to their row before they reach a table; erased descriptors are deleted, never flagged.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/seal"
)

// ErrNotFound is returned when the requested record does not exist (or has expired).
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a unique value (e-mail, invite token) is already taken.
var ErrConflict = errors.New("already exists")

// Store reads and writes the app's records in one database. It is safe for concurrent use,
// also by several processes (replicas) on one database.
type Store struct {
	db   dialect
	keys *seal.Keyring
	now  func() time.Time
}

func newStore(db dialect, keys *seal.Keyring) *Store {
	return &Store{db: db, keys: keys, now: time.Now}
}

// Open connects to the store named by dsn and applies any pending schema migrations.
// dsn is "sqlite:/path/to/file.db", a bare file path (SQLite), or a "postgres://" or
// "postgresql://" URL (PostgreSQL). keys seal and open face descriptors.
func Open(ctx context.Context, dsn string, keys *seal.Keyring) (*Store, error) {
	if keys == nil {
		return nil, errors.New("open store: no descriptor keyring given")
	}
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn, keys)
	case strings.HasPrefix(dsn, "sqlite:"):
		return openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"), keys)
	case dsn == "":
		return nil, errors.New("open store: no database given: set FACELOGIN_DB to sqlite:/path/file.db or a postgres:// URL")
	case strings.Contains(dsn, "://"):
		return nil, fmt.Errorf("open store: unsupported database URL scheme in %q: use sqlite:/path/file.db or postgres://", redactDSN(dsn))
	default:
		return openSQLite(ctx, dsn, keys)
	}
}

// redactDSN hides a password in a DSN so it can go into an error message.
func redactDSN(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return dsn
	}
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		userinfo = user + ":xxxxx"
	}
	return scheme + "://" + userinfo + "@" + host
}

// Ping checks the store is reachable.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.ping(ctx); err != nil {
		return fmt.Errorf("ping store: %w", err)
	}
	return nil
}

// Close releases the store.
func (s *Store) Close() error { return s.db.close() }
