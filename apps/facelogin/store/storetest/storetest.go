// Package storetest gives tests an isolated PostgreSQL schema on the test server named by
// EDGELINE_TEST_POSTGRES, so the store's and the api's suites run against real PostgreSQL in
// parallel without touching each other or the shared database.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// SkipMessage says how to enable the PostgreSQL half of a test.
const SkipMessage = "set EDGELINE_TEST_POSTGRES to a PostgreSQL DSN (make test does)"

// PostgresSchema creates an empty schema whose name starts with prefix on the test server and
// returns a DSN whose search_path points at it; the schema is dropped when the test ends. The
// test is skipped with SkipMessage when EDGELINE_TEST_POSTGRES is unset.
func PostgresSchema(tb testing.TB, prefix string) string {
	tb.Helper()
	base := os.Getenv("EDGELINE_TEST_POSTGRES")
	if base == "" {
		tb.Skip(SkipMessage)
	}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("connect to EDGELINE_TEST_POSTGRES: %v", err)
	}
	defer c.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	schema := prefix + hex.EncodeToString(b[:])
	if _, err := c.Exec(ctx, "create schema "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "drop schema "+schema+" cascade"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

// ForEachStore runs fn in parallel subtests, once with the DSN of a fresh SQLite file and once
// with a fresh PostgreSQL schema (see PostgresSchema); fn may open the DSN any number of times
// (replicas, reopening after a key change).
func ForEachStore(t *testing.T, prefix string, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, "sqlite:"+filepath.Join(t.TempDir(), "facelogin.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, PostgresSchema(t, prefix))
	})
}
