package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/edgeline/edgeline/apps/facelogin/seal"
)

// Open connects to the store named by dsn and applies any pending schema migrations.
// dsn is "sqlite:/path/to/file.db", a bare file path (SQLite), or a "postgres://" or
// "postgresql://" URL (PostgreSQL). keys seal and open face descriptors.
func Open(ctx context.Context, dsn string, keys *seal.Keyring) (Store, error) {
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
