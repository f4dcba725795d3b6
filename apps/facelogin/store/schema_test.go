package store

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// render returns the DDL a database is given, the migrations table and the schema history,
// indented for reading.
func render(types *strings.Replacer) string {
	var b strings.Builder
	stmt := func(q string) {
		lines := strings.Split(types.Replace(q), "\n")
		for i, l := range lines {
			if lines[i] = strings.TrimSpace(l); i > 0 && lines[i] != ")" {
				lines[i] = "\t" + lines[i]
			}
		}
		b.WriteString(strings.Join(lines, "\n") + ";\n")
	}
	stmt(migrationsTable)
	for _, m := range schema {
		fmt.Fprintf(&b, "\n-- migration %d: %s\n", m.version, m.name)
		for _, q := range m.stmts {
			stmt(q)
		}
	}
	return b.String()
}

// TestSchemaGolden shows what each database is given (testdata/schema-*.sql; rewrite with
// -update) and checks every {type} word of the one schema has a spelling in both.
func TestSchemaGolden(t *testing.T) {
	for name, types := range map[string]*strings.Replacer{"sqlite": sqliteTypes, "postgres": postgresTypes} {
		got := render(types)
		if left := regexp.MustCompile(`\{\w*\}`).FindAllString(got, -1); len(left) > 0 {
			t.Errorf("%s: type words without a spelling: %v", name, left)
		}
		path := filepath.Join("testdata", "schema-"+name+".sql")
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if got != string(want) {
			t.Errorf("%s schema differs from %s; if the change is intended, run go test -update and review the diff", name, path)
		}
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
	for _, m := range regexp.MustCompile(`create table (?:if not exists )?(\w+)`).FindAllStringSubmatch(render(sqliteTypes), -1) {
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
