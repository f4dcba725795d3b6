package store

import (
	"context"
	"fmt"
	"strings"
)

// migration is one numbered schema step. Steps are applied in order, each version once, and
// recorded in schema_migrations; a released step is never edited, only followed by a new one.
type migration struct {
	version int
	name    string
	stmts   []string
}

// migrationsTable records the applied steps.
const migrationsTable = `create table if not exists schema_migrations (
	version integer primary key,
	name text not null,
	applied_at {applied}
)`

// migrateLock serialises concurrent migrators (two replicas starting at once).
const migrateLock = "facelogin.migrate"

// migrate applies the pending steps of schema, with column types spelled by types, in one
// transaction.
func migrate(ctx context.Context, d dialect, types *strings.Replacer) error {
	return d.inTx(ctx, func(tx conn) error {
		if err := d.lock(ctx, tx, migrateLock); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if _, err := tx.exec(ctx, types.Replace(migrationsTable)); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		applied := map[int]bool{}
		latest := 0
		err := tx.query(ctx, `select version from schema_migrations`, nil, func(scan func(...any) error) error {
			var v int64
			if err := scan(&v); err != nil {
				return err
			}
			applied[int(v)] = true
			latest = max(latest, int(v))
			return nil
		})
		if err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		if known := schema[len(schema)-1].version; latest > known {
			return fmt.Errorf("the database schema is at version %d, newer than this program knows (%d): run a newer facelogin", latest, known)
		}
		for _, m := range schema {
			if applied[m.version] {
				continue
			}
			for _, q := range m.stmts {
				if _, err := tx.exec(ctx, types.Replace(q)); err != nil {
					return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
				}
			}
			if _, err := tx.exec(ctx, `insert into schema_migrations (version, name) values ($1, $2)`, int64(m.version), m.name); err != nil {
				return fmt.Errorf("record migration %d: %w", m.version, err)
			}
		}
		return nil
	})
}
