package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/seal"
)

// benchSamples is the size of the enrolled population the index is rebuilt from at start:
// 2 000 people with 5 samples each.
const benchSamples = 10_000

// allSamplesReads are what BenchmarkAllSamples compares: AllSamples, and the same rows read
// without unsealing ("-raw").
var allSamplesReads = []struct {
	suffix string
	read   func(ctx context.Context, st *Store) (int, error)
}{
	{"", func(ctx context.Context, st *Store) (int, error) {
		ss, err := st.AllSamples(ctx)
		return len(ss), err
	}},
	{"-raw", func(ctx context.Context, st *Store) (int, error) {
		n := 0
		err := st.db.query(ctx, `select `+sampleCols+` from face_samples order by id`, nil, func(scan func(...any) error) error {
			var id, uid int64
			var blob []byte
			var at time.Time
			n++
			return scan(&id, &uid, &blob, timeCol{&at})
		})
		return n, err
	}},
}

// BenchmarkAllSamples measures what an api replica pays at start to rebuild its index: read
// and unseal every descriptor. Each store is measured against its own baseline that reads the
// same rows without unsealing ("raw"), and PostgreSQL against SQLite; the ratios are printed.
func BenchmarkAllSamples(b *testing.B) {
	ns := map[string]float64{}
	for _, backend := range []string{"sqlite", "postgres"} {
		var dsn string
		if backend == "sqlite" {
			dsn = "sqlite:" + filepath.Join(b.TempDir(), "facelogin.db")
		} else if os.Getenv("EDGELINE_TEST_POSTGRES") != "" {
			dsn = postgresSchema(b)
		}
		for _, r := range allSamplesReads {
			name := backend + r.suffix
			b.Run(fmt.Sprintf("%s/n=%d", name, benchSamples), func(b *testing.B) {
				if dsn == "" {
					b.Skip(postgresSkip)
				}
				st := populate(b, dsn)
				ctx := context.Background()
				for b.Loop() {
					if n, err := r.read(ctx, st); err != nil || n != benchSamples {
						b.Fatalf("%s read = %d, %v", name, n, err)
					}
				}
				ns[name] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				b.ReportMetric(ns[name]/benchSamples, "ns/sample")
			})
		}
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		if ns[backend] > 0 && ns[backend+"-raw"] > 0 {
			fmt.Printf("ratio %s AllSamples / raw read = %.2f (unsealing cost)\n", backend, ns[backend]/ns[backend+"-raw"])
		}
	}
	if ns["sqlite"] > 0 && ns["postgres"] > 0 {
		fmt.Printf("ratio AllSamples postgres / sqlite = %.2f\n", ns["postgres"]/ns["sqlite"])
	}
}

// BenchmarkReplaceSamples measures one enrollment write (5 samples, sealed, in a transaction
// with the change-feed entry) on each store.
func BenchmarkReplaceSamples(b *testing.B) {
	ns := map[string]float64{}
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			var dsn string
			if backend == "sqlite" {
				dsn = "sqlite:" + filepath.Join(b.TempDir(), "facelogin.db")
			} else {
				dsn = postgresSchema(b)
			}
			st := open(b, dsn, keyring(b, newKey(b)))
			u := mustUser(b, st, "Bench")
			ds := []match.Descriptor{descriptor(1), descriptor(2), descriptor(3), descriptor(4), descriptor(5)}
			ctx := context.Background()
			for b.Loop() {
				if err := st.ReplaceSamples(ctx, u.ID, ds); err != nil {
					b.Fatal(err)
				}
			}
			ns[backend] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
	}
	if ns["sqlite"] > 0 && ns["postgres"] > 0 {
		fmt.Printf("ratio ReplaceSamples postgres / sqlite = %.2f\n", ns["postgres"]/ns["sqlite"])
	}
}

// benchKey seals the benchmark population, which is shared by the sub-benchmarks.
var benchKey, _ = seal.Generate()

// populated remembers which benchmark databases already hold the population.
var populated = map[string]bool{}

// populate opens dsn and, the first time, enrolls benchSamples samples.
func populate(b *testing.B, dsn string) *Store {
	b.Helper()
	st := open(b, dsn, keyring(b, benchKey))
	if populated[dsn] {
		return st
	}
	ctx := context.Background()
	for i := range benchSamples / 5 {
		u, err := st.CreateUser(ctx, User{Name: fmt.Sprintf("Person %04d", i), Email: fmt.Sprintf("p%04d@example.test", i), Role: RoleUser})
		if err != nil {
			b.Fatal(err)
		}
		ds := make([]match.Descriptor, 5)
		for j := range ds {
			ds[j] = descriptor(uint64(5*i + j))
		}
		if err := st.ReplaceSamples(ctx, u.ID, ds); err != nil {
			b.Fatal(err)
		}
	}
	populated[dsn] = true
	return st
}
