package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/seal"
)

// Sample is one enrolled face descriptor of a user.
type Sample struct {
	ID         int64
	UserID     match.UserID
	Descriptor match.Descriptor
	CreatedAt  time.Time
}

// FaceChange records that a user's face samples changed (enrolled, replaced or erased), so
// every replica can refresh its in-memory index. It carries no biometric data.
type FaceChange struct {
	Seq    int64
	UserID match.UserID
}

// feedLock serialises writers of face_changes until their transaction ends, so sequence
// numbers become visible in order.
const feedLock = "facelogin.face_changes"

// rotateBatch is how many samples RotateKey re-seals per transaction.
const rotateBatch = 256

// sampleAAD binds a sealed descriptor to its row: a blob copied to another user or sample
// does not open.
func sampleAAD(user match.UserID, sample int64) []byte {
	return []byte("facelogin/face_samples/v1\x00user=" + strconv.FormatInt(int64(user), 10) +
		"\x00sample=" + strconv.FormatInt(sample, 10))
}

func encodeDescriptor(d match.Descriptor) []byte {
	b := make([]byte, 4*len(d))
	for i, f := range d {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

func decodeDescriptor(b []byte) (match.Descriptor, error) {
	var d match.Descriptor
	if len(b) != 4*len(d) {
		return d, fmt.Errorf("descriptor is %d bytes, want %d", len(b), 4*len(d))
	}
	for i := range d {
		d[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return d, nil
}

// changeFace runs fn in a transaction that records a FaceChange of user id, then pushes
// deleted pages out of the database's logs. what names the operation in errors.
func (s *Store) changeFace(ctx context.Context, what string, id match.UserID, fn func(tx conn) error) error {
	err := s.db.inTx(ctx, func(tx conn) error {
		if err := s.db.lock(ctx, tx, feedLock); err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `insert into face_changes (user_id, at) values ($1, $2)`, int64(id), micros(s.now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := s.db.erased(ctx); err != nil {
		return fmt.Errorf("%s: flush deleted pages: %w", what, err)
	}
	return nil
}

// ReplaceSamples atomically replaces all face samples of a user, sets FaceEnrolledAt to now
// and records a FaceChange. ErrNotFound if the user does not exist; an empty ds erases the
// samples like DeleteSamples.
func (s *Store) ReplaceSamples(ctx context.Context, id match.UserID, ds []match.Descriptor) error {
	if len(ds) == 0 {
		return s.DeleteSamples(ctx, id)
	}
	return s.setSamples(ctx, fmt.Sprintf("replace face samples of user %d", id), id, ds)
}

// DeleteSamples deletes every sample row of the user (no soft delete), clears
// FaceEnrolledAt and records a FaceChange. ErrNotFound if the user does not exist.
func (s *Store) DeleteSamples(ctx context.Context, id match.UserID) error {
	return s.setSamples(ctx, fmt.Sprintf("delete face samples of user %d", id), id, nil)
}

// setSamples makes ds the user's samples; FaceEnrolledAt becomes now, or NULL when ds is
// empty.
func (s *Store) setSamples(ctx context.Context, what string, id match.UserID, ds []match.Descriptor) error {
	now := micros(s.now())
	enrolled := now
	if len(ds) == 0 {
		enrolled = time.Time{}
	}
	return s.changeFace(ctx, what, id, func(tx conn) error {
		n, err := tx.exec(ctx, `update users set face_enrolled_at = $2 where id = $1`, int64(id), enrolled)
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		if _, err := tx.exec(ctx, `delete from face_samples where user_id = $1`, int64(id)); err != nil {
			return err
		}
		for _, d := range ds {
			// The row id is part of the sealed blob's additional data, so the row is created
			// with an empty blob first and sealed once its id is known.
			var sid int64
			if err := scanOne(ctx, tx, `insert into face_samples (user_id, sealed, created_at) values ($1, $2, $3) returning id`,
				[]any{int64(id), []byte{}, now}, &sid); err != nil {
				return err
			}
			blob, err := s.keys.Seal(encodeDescriptor(d), sampleAAD(id, sid))
			if err != nil {
				return err
			}
			if _, err := tx.exec(ctx, `update face_samples set sealed = $2 where id = $1`, sid, blob); err != nil {
				return err
			}
		}
		return nil
	})
}

const sampleCols = `id, user_id, sealed, created_at`

// Samples returns the samples of one user.
func (s *Store) Samples(ctx context.Context, id match.UserID) ([]Sample, error) {
	ss, err := queryAll(ctx, s.db, `select `+sampleCols+` from face_samples where user_id = $1 order by id`, []any{int64(id)}, s.sampleScanner())
	if err != nil {
		return nil, fmt.Errorf("read face samples of user %d: %w", id, err)
	}
	return ss, nil
}

// AllSamples returns every sample, to build the in-memory index at start.
func (s *Store) AllSamples(ctx context.Context) ([]Sample, error) {
	ss, err := queryAll(ctx, s.db, `select `+sampleCols+` from face_samples order by id`, nil, s.sampleScanner())
	if err != nil {
		return nil, fmt.Errorf("read face samples: %w", err)
	}
	return ss, nil
}

// sampleScanner returns a reader of sampleCols rows that opens each row's descriptor. Its
// scan targets are allocated once, not per row: an api replica reads every sample at start.
func (s *Store) sampleScanner() func(scan func(...any) error) (Sample, error) {
	var (
		id, uid int64
		blob    []byte
		created time.Time
	)
	dest := []any{&id, &uid, &blob, timeCol{&created}}
	return func(scan func(...any) error) (Sample, error) {
		if err := scan(dest...); err != nil {
			return Sample{}, err
		}
		plain, err := s.keys.Open(blob, sampleAAD(match.UserID(uid), id))
		if err != nil {
			return Sample{}, fmt.Errorf("sample %d: %w", id, err)
		}
		d, err := decodeDescriptor(plain)
		clear(plain)
		if err != nil {
			return Sample{}, fmt.Errorf("sample %d: %w", id, err)
		}
		return Sample{ID: id, UserID: match.UserID(uid), Descriptor: d, CreatedAt: created}, nil
	}
}

// FaceChanges returns the changes after seq, oldest first. Sequence numbers are committed
// in order on every replica, so polling from the last seen Seq misses nothing.
func (s *Store) FaceChanges(ctx context.Context, after int64) ([]FaceChange, error) {
	cs, err := queryAll(ctx, s.db, `select seq, user_id from face_changes where seq > $1 order by seq`, []any{after},
		func(scan func(...any) error) (FaceChange, error) {
			var c FaceChange
			var uid int64
			err := scan(&c.Seq, &uid)
			c.UserID = match.UserID(uid)
			return c, err
		})
	if err != nil {
		return nil, fmt.Errorf("read face changes: %w", err)
	}
	return cs, nil
}

// LastFaceChange returns the newest change's Seq (0 when none).
func (s *Store) LastFaceChange(ctx context.Context) (int64, error) {
	var seq int64
	if err := scanOne(ctx, s.db, `select coalesce(max(seq), 0) from face_changes`, nil, &seq); err != nil {
		return 0, fmt.Errorf("read last face change: %w", err)
	}
	return seq, nil
}

// RotateKey re-seals every descriptor not yet sealed with the keyring's primary key, in
// batches of rotateBatch per transaction, and returns how many it re-sealed. A sample
// replaced or deleted meanwhile is left alone.
func (s *Store) RotateKey(ctx context.Context) (int, error) {
	type row struct {
		id, user int64
		blob     []byte
	}
	primary := s.keys.Primary()
	var last int64
	total := 0
	for {
		batch, err := queryAll(ctx, s.db, `select id, user_id, sealed from face_samples where id > $1 order by id limit $2`,
			[]any{last, int64(rotateBatch)}, func(scan func(...any) error) (row, error) {
				var r row
				err := scan(&r.id, &r.user, &r.blob)
				return r, err
			})
		if err != nil {
			return total, fmt.Errorf("rotate key: read samples: %w", err)
		}
		if len(batch) == 0 {
			return total, nil
		}
		last = batch[len(batch)-1].id
		n := 0
		err = s.db.inTx(ctx, func(tx conn) error {
			for _, r := range batch {
				if id, err := seal.KeyID(r.blob); err == nil && id == primary {
					continue
				}
				aad := sampleAAD(match.UserID(r.user), r.id)
				plain, err := s.keys.Open(r.blob, aad)
				if err != nil {
					return fmt.Errorf("sample %d: %w", r.id, err)
				}
				blob, err := s.keys.Seal(plain, aad)
				clear(plain)
				if err != nil {
					return err
				}
				k, err := tx.exec(ctx, `update face_samples set sealed = $2 where id = $1 and sealed = $3`, r.id, blob, r.blob)
				if err != nil {
					return err
				}
				n += int(k)
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("rotate key: %w", err)
		}
		total += n
	}
}
