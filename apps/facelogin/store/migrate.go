package store

import (
	"context"
	"fmt"
)

// migration is one numbered schema step. Steps are applied in order, each version once, and
// recorded in schema_migrations; a released step is never edited, only followed by a new one.
type migration struct {
	version int
	name    string
	stmts   []string
}

// migrate applies the pending migrations in one transaction. lock, if not nil, runs first in
// that transaction and must serialise concurrent migrators (two replicas starting at once).
func migrate(ctx context.Context, d dialect, steps []migration, createTable string, lock func(context.Context, conn) error) error {
	return d.inTx(ctx, func(tx conn) error {
		if lock != nil {
			if err := lock(ctx, tx); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
		}
		if _, err := tx.exec(ctx, createTable); err != nil {
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
		if known := steps[len(steps)-1].version; latest > known {
			return fmt.Errorf("the database schema is at version %d, newer than this program knows (%d): run a newer facelogin", latest, known)
		}
		for _, m := range steps {
			if applied[m.version] {
				continue
			}
			for _, q := range m.stmts {
				if _, err := tx.exec(ctx, q); err != nil {
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
