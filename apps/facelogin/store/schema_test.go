package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// released pins each released schema step, as both databases are given it (the SHA-256 of
// the statements rendered for SQLite, then for PostgreSQL). A released step is never edited,
// only followed by a new one, whose hash is added here when it lands.
var released = map[int]string{
	1: "29d4b5380b86d664baa076dd1f964597e90cafa85a64bed539838d7627421e32",
	2: "9d01a879666134b5df15ce5351e7006a712e2a55b70b14252bc80b5b7470e86b",
	3: "c0141e44ea358ba59fc008eeab8d7ae2d6c9abed0dded1bb504856becfbda8ce",
	4: "f17a5b7ebc40b5c9c5e35cd4ef5d6f1a85e530489bbfe3c1f4794c715d4a500c",
	5: "8b4bc9ce55cace0a14400379a546827c44597cf334247a6984cd99c66b55da8a",
}

// render returns the statements of step m as a database is given them.
func render(m migration, types *strings.Replacer) string {
	var b strings.Builder
	for _, q := range m.stmts {
		b.WriteString(types.Replace(q) + ";\n")
	}
	return b.String()
}

// TestSchemaReleased checks every {type} word of the one schema has a spelling in both
// databases and no released step has changed.
func TestSchemaReleased(t *testing.T) {
	unspelled := regexp.MustCompile(`\{\w*\}`)
	for i, m := range schema {
		if m.version != i+1 {
			t.Errorf("step %d has version %d: number the steps 1, 2, 3 ...", i+1, m.version)
		}
		h := sha256.New()
		for _, types := range []*strings.Replacer{sqliteTypes, postgresTypes} {
			ddl := render(m, types)
			if left := unspelled.FindAllString(ddl, -1); len(left) > 0 {
				t.Errorf("migration %d: type words without a spelling: %v", m.version, left)
			}
			h.Write([]byte(ddl))
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != released[m.version] {
			t.Errorf("migration %d (%s) hashes to %s, not to its released %q: add a new step instead of editing a released one, or record the hash of a new step in released", m.version, m.name, got, released[m.version])
		}
	}
	if left := unspelled.FindAllString(sqliteTypes.Replace(migrationsTable)+postgresTypes.Replace(migrationsTable), -1); len(left) > 0 {
		t.Errorf("schema_migrations: type words without a spelling: %v", left)
	}
}

// table is what the schema test compares of one table: its columns in order with their
// nullability, and its index names.
type table struct {
	Columns []string // "name" or "name not null"
	Indexes []string
}

// TestSchemaSameOnBoth migrates a SQLite file and a PostgreSQL schema and compares their
// catalogs: the same tables, columns in the same order, the same NOT NULL columns and the
// same named indexes.
func TestSchemaSameOnBoth(t *testing.T) {
	ctx := context.Background()
	lite := open(t, "sqlite:"+filepath.Join(t.TempDir(), "facelogin.db"), keyring(t, newKey(t)))
	pg := open(t, postgresSchema(t), keyring(t, newKey(t)))

	liteTables := map[string]*table{}
	names, err := queryAll(ctx, lite.db, `select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name`, nil, scanString)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		tb := &table{}
		err := lite.db.query(ctx, `select name, "notnull", pk from pragma_table_info($1) order by cid`, []any{name}, func(scan func(...any) error) error {
			var col string
			var notNull, pk int64
			if err := scan(&col, &notNull, &pk); err != nil {
				return err
			}
			// SQLite does not mark primary keys NOT NULL; PostgreSQL does.
			tb.Columns = append(tb.Columns, column(col, notNull == 1 || pk > 0))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if tb.Indexes, err = queryAll(ctx, lite.db, `select name from sqlite_master where type = 'index' and tbl_name = $1 and name not like 'sqlite_autoindex_%' order by name`, []any{name}, scanString); err != nil {
			t.Fatal(err)
		}
		liteTables[name] = tb
	}

	pgTables := map[string]*table{}
	err = pg.db.query(ctx, `select table_name, column_name, is_nullable from information_schema.columns
		where table_schema = current_schema() order by table_name, ordinal_position`, nil, func(scan func(...any) error) error {
		var tname, col, nullable string
		if err := scan(&tname, &col, &nullable); err != nil {
			return err
		}
		if pgTables[tname] == nil {
			pgTables[tname] = &table{}
		}
		pgTables[tname].Columns = append(pgTables[tname].Columns, column(col, nullable == "NO"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, tb := range pgTables {
		// Unique and primary-key constraints bring indexes of their own, named by PostgreSQL.
		if tb.Indexes, err = queryAll(ctx, pg.db, `select indexname from pg_indexes where schemaname = current_schema() and tablename = $1
			and indexname not like '%_pkey' and indexname not like '%_key' order by indexname`, []any{name}, scanString); err != nil {
			t.Fatal(err)
		}
	}
	var ddl string
	for _, m := range schema {
		ddl += render(m, sqliteTypes)
	}
	for _, m := range regexp.MustCompile(`create table (\w+)`).FindAllStringSubmatch(ddl, -1) {
		if liteTables[m[1]] == nil || pgTables[m[1]] == nil {
			t.Errorf("table %s is missing: sqlite %v, postgres %v", m[1], liteTables[m[1]] != nil, pgTables[m[1]] != nil)
		}
	}
	if !reflect.DeepEqual(liteTables, pgTables) {
		for name := range merge(liteTables, pgTables) {
			if !reflect.DeepEqual(liteTables[name], pgTables[name]) {
				t.Errorf("table %s:\nsqlite   %+v\npostgres %+v", name, liteTables[name], pgTables[name])
			}
		}
	}
}

func scanString(scan func(...any) error) (string, error) {
	var s string
	err := scan(&s)
	return s, err
}

func column(name string, notNull bool) string {
	if notNull {
		return name + " not null"
	}
	return name
}

func merge(a, b map[string]*table) map[string]bool {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}
