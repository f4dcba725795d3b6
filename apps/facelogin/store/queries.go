package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
	"github.com/edgeline/edgeline/apps/facelogin/seal"
)

// rotateBatch is how many samples RotateKey re-seals per transaction.
const rotateBatch = 256

// failureRetention is how long failed attempts are kept; rate-limit windows must be shorter.
const failureRetention = 24 * time.Hour

// inviteRetention is how long an expired invite is kept (so an admin can still see why a
// link stopped working) before CreateInvite deletes it.
const inviteRetention = 30 * 24 * time.Hour

// sqlStore implements Store on either database; d supplies the driver and dialect.
type sqlStore struct {
	d    dialect
	keys *seal.Keyring
	now  func() time.Time
}

const userCols = `id, name, email, role, password_hash, pin_hash, consent_version, consent_at, face_enrolled_at, created_at`

func scanUser(scan func(...any) error) (User, error) {
	var u User
	var id int64
	var role string
	err := scan(&id, &u.Name, &u.Email, &role, &u.PasswordHash, &u.PINHash, &u.ConsentVersion,
		timeCol{&u.ConsentAt}, timeCol{&u.FaceEnrolledAt}, timeCol{&u.CreatedAt})
	u.ID, u.Role = match.UserID(id), Role(role)
	return u, err
}

func checkRole(r Role) error {
	if r != RoleUser && r != RoleAdmin {
		return fmt.Errorf("unknown role %q: use %q or %q", r, RoleUser, RoleAdmin)
	}
	return nil
}

func (s *sqlStore) CreateUser(ctx context.Context, u User) (User, error) {
	if err := checkRole(u.Role); err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.now()
	}
	u.CreatedAt = micros(u.CreatedAt)
	u.ConsentAt, u.FaceEnrolledAt = micros(u.ConsentAt), micros(u.FaceEnrolledAt)
	var id int64
	err := s.d.one(ctx, `insert into users (name, email, role, password_hash, pin_hash, consent_version, consent_at, face_enrolled_at, created_at)
		values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning id`,
		[]any{u.Name, u.Email, string(u.Role), u.PasswordHash, u.PINHash, u.ConsentVersion, u.ConsentAt, u.FaceEnrolledAt, u.CreatedAt}, &id)
	if s.d.isUnique(err) {
		return User{}, fmt.Errorf("create user: e-mail %w", ErrConflict)
	}
	if err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	u.ID = match.UserID(id)
	return u, nil
}

func (s *sqlStore) User(ctx context.Context, id match.UserID) (User, error) {
	return s.oneUser(ctx, `select `+userCols+` from users where id = $1`, int64(id))
}

func (s *sqlStore) UserByEmail(ctx context.Context, email string) (User, error) {
	return s.oneUser(ctx, `select `+userCols+` from users where email = $1`, email)
}

func (s *sqlStore) oneUser(ctx context.Context, q string, arg any) (User, error) {
	u, found, err := queryRow(ctx, s.d, q, []any{arg}, scanUser)
	if err != nil {
		return User{}, fmt.Errorf("read user: %w", err)
	}
	if !found {
		return User{}, fmt.Errorf("user: %w", ErrNotFound)
	}
	return u, nil
}

func (s *sqlStore) Users(ctx context.Context) ([]User, error) {
	var us []User
	err := s.d.query(ctx, `select `+userCols+` from users order by name, id`, nil, func(scan func(...any) error) error {
		u, err := scanUser(scan)
		us = append(us, u)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return us, nil
}

func (s *sqlStore) UpdateUser(ctx context.Context, u User) error {
	if err := checkRole(u.Role); err != nil {
		return fmt.Errorf("update user: %w", err)
	}
	n, err := s.d.exec(ctx, `update users set name = $2, email = $3, role = $4, password_hash = $5, pin_hash = $6,
		consent_version = $7, consent_at = $8, face_enrolled_at = $9 where id = $1`,
		int64(u.ID), u.Name, u.Email, string(u.Role), u.PasswordHash, u.PINHash, u.ConsentVersion,
		micros(u.ConsentAt), micros(u.FaceEnrolledAt))
	if s.d.isUnique(err) {
		return fmt.Errorf("update user %d: e-mail %w", u.ID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("update user %d: %w", u.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("update user %d: %w", u.ID, ErrNotFound)
	}
	return nil
}

// DeleteUser removes the user row; face samples, sessions and login history go with it
// (ON DELETE CASCADE), as do failures recorded under "account:<id>" and
// "account:<id>:<factor>" and invites to the user's e-mail. A FaceChange tells the other
// replicas to drop the user from their index.
func (s *sqlStore) DeleteUser(ctx context.Context, id match.UserID) error {
	err := s.d.inTx(ctx, func(tx conn) error {
		if err := s.d.lockFeed(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `delete from face_samples where user_id = $1`, int64(id)); err != nil {
			return err
		}
		// The invite the user enrolled with still names them.
		if _, err := tx.exec(ctx, `delete from invites where email = (select email from users where id = $1)`, int64(id)); err != nil {
			return err
		}
		n, err := tx.exec(ctx, `delete from users where id = $1`, int64(id))
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		account := "account:" + strconv.FormatInt(int64(id), 10)
		if _, err := tx.exec(ctx, `delete from failures where key = $1 or key like $2`, account, account+":%"); err != nil {
			return err
		}
		return s.addChange(ctx, tx, id)
	})
	if err != nil {
		return fmt.Errorf("delete user %d: %w", id, err)
	}
	if err := s.d.erased(ctx); err != nil {
		return fmt.Errorf("delete user %d: flush deleted pages: %w", id, err)
	}
	return nil
}

func (s *sqlStore) CountAdmins(ctx context.Context) (int, error) {
	var n int64
	if err := s.d.one(ctx, `select count(*) from users where role = $1`, []any{string(RoleAdmin)}, &n); err != nil {
		return 0, fmt.Errorf("count admins: %w", err)
	}
	return int(n), nil
}

const inviteCols = `token_hash, name, email, role, created_by, created_at, expires_at, used_at`

func scanInvite(scan func(...any) error) (Invite, error) {
	var inv Invite
	var by int64
	var role string
	err := scan(&inv.TokenHash, &inv.Name, &inv.Email, &role, idCol{&by},
		timeCol{&inv.CreatedAt}, timeCol{&inv.ExpiresAt}, timeCol{&inv.UsedAt})
	inv.CreatedBy, inv.Role = match.UserID(by), Role(role)
	return inv, err
}

func (s *sqlStore) CreateInvite(ctx context.Context, inv Invite) error {
	if err := checkRole(inv.Role); err != nil {
		return fmt.Errorf("create invite: %w", err)
	}
	if inv.TokenHash == "" {
		return errors.New("create invite: empty token hash")
	}
	if inv.CreatedAt.IsZero() {
		inv.CreatedAt = s.now()
	}
	// Invites name people who may never enroll: forget them a while after they expire.
	if _, err := s.d.exec(ctx, `delete from invites where expires_at < $1`, micros(inv.CreatedAt.Add(-inviteRetention))); err != nil {
		return fmt.Errorf("create invite: prune expired invites: %w", err)
	}
	_, err := s.d.exec(ctx, `insert into invites (`+inviteCols+`) values ($1, $2, $3, $4, $5, $6, $7, $8)`,
		inv.TokenHash, inv.Name, inv.Email, string(inv.Role), nullID(int64(inv.CreatedBy)),
		micros(inv.CreatedAt), micros(inv.ExpiresAt), micros(inv.UsedAt))
	if s.d.isUnique(err) {
		return fmt.Errorf("create invite: token %w", ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create invite: %w", err)
	}
	return nil
}

func (s *sqlStore) Invite(ctx context.Context, tokenHash string, now time.Time) (Invite, error) {
	inv, found, err := queryRow(ctx, s.d, `select `+inviteCols+` from invites where token_hash = $1 and used_at is null and expires_at > $2`,
		[]any{tokenHash, micros(now)}, scanInvite)
	if err != nil {
		return Invite{}, fmt.Errorf("read invite: %w", err)
	}
	if !found {
		return Invite{}, fmt.Errorf("invite: %w", ErrNotFound)
	}
	return inv, nil
}

func (s *sqlStore) UseInvite(ctx context.Context, tokenHash string, now time.Time) error {
	n, err := s.d.exec(ctx, `update invites set used_at = $2 where token_hash = $1 and used_at is null and expires_at > $2`,
		tokenHash, micros(now))
	if err != nil {
		return fmt.Errorf("use invite: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("use invite: %w", ErrNotFound)
	}
	return nil
}

func (s *sqlStore) Invites(ctx context.Context, now time.Time) ([]Invite, error) {
	var invs []Invite
	err := s.d.query(ctx, `select `+inviteCols+` from invites where used_at is null and expires_at > $1 order by created_at, token_hash`,
		[]any{micros(now)}, func(scan func(...any) error) error {
			inv, err := scanInvite(scan)
			invs = append(invs, inv)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("list invites: %w", err)
	}
	return invs, nil
}

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

// ReplaceSamples replaces the user's samples, sets FaceEnrolledAt to now and records a
// FaceChange, in one transaction. An empty ds erases the samples like DeleteSamples.
func (s *sqlStore) ReplaceSamples(ctx context.Context, id match.UserID, ds []match.Descriptor) error {
	if len(ds) == 0 {
		return s.DeleteSamples(ctx, id)
	}
	now := micros(s.now())
	err := s.d.inTx(ctx, func(tx conn) error {
		if err := s.d.lockFeed(ctx, tx); err != nil {
			return err
		}
		n, err := tx.exec(ctx, `update users set face_enrolled_at = $2 where id = $1`, int64(id), now)
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
			if err := tx.one(ctx, `insert into face_samples (user_id, sealed, created_at) values ($1, $2, $3) returning id`,
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
		return s.addChange(ctx, tx, id)
	})
	if err != nil {
		return fmt.Errorf("replace face samples of user %d: %w", id, err)
	}
	if err := s.d.erased(ctx); err != nil {
		return fmt.Errorf("replace face samples of user %d: flush deleted pages: %w", id, err)
	}
	return nil
}

// DeleteSamples deletes every sample row of the user (no soft delete), clears FaceEnrolledAt
// and records a FaceChange.
func (s *sqlStore) DeleteSamples(ctx context.Context, id match.UserID) error {
	err := s.d.inTx(ctx, func(tx conn) error {
		if err := s.d.lockFeed(ctx, tx); err != nil {
			return err
		}
		n, err := tx.exec(ctx, `update users set face_enrolled_at = null where id = $1`, int64(id))
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		if _, err := tx.exec(ctx, `delete from face_samples where user_id = $1`, int64(id)); err != nil {
			return err
		}
		return s.addChange(ctx, tx, id)
	})
	if err != nil {
		return fmt.Errorf("delete face samples of user %d: %w", id, err)
	}
	if err := s.d.erased(ctx); err != nil {
		return fmt.Errorf("delete face samples of user %d: flush deleted pages: %w", id, err)
	}
	return nil
}

func (s *sqlStore) addChange(ctx context.Context, tx conn, id match.UserID) error {
	_, err := tx.exec(ctx, `insert into face_changes (user_id, at) values ($1, $2)`, int64(id), micros(s.now()))
	return err
}

func (s *sqlStore) Samples(ctx context.Context, id match.UserID) ([]Sample, error) {
	ss, err := s.samples(ctx, `select id, user_id, sealed, created_at from face_samples where user_id = $1 order by id`, int64(id))
	if err != nil {
		return nil, fmt.Errorf("read face samples of user %d: %w", id, err)
	}
	return ss, nil
}

func (s *sqlStore) AllSamples(ctx context.Context) ([]Sample, error) {
	ss, err := s.samples(ctx, `select id, user_id, sealed, created_at from face_samples order by id`)
	if err != nil {
		return nil, fmt.Errorf("read face samples: %w", err)
	}
	return ss, nil
}

func (s *sqlStore) samples(ctx context.Context, q string, args ...any) ([]Sample, error) {
	var ss []Sample
	var (
		id, uid int64
		blob    []byte
		created time.Time
	)
	dest := []any{&id, &uid, &blob, timeCol{&created}}
	err := s.d.query(ctx, q, args, func(scan func(...any) error) error {
		if err := scan(dest...); err != nil {
			return err
		}
		plain, err := s.keys.Open(blob, sampleAAD(match.UserID(uid), id))
		if err != nil {
			return fmt.Errorf("sample %d: %w", id, err)
		}
		d, err := decodeDescriptor(plain)
		clear(plain)
		if err != nil {
			return fmt.Errorf("sample %d: %w", id, err)
		}
		ss = append(ss, Sample{ID: id, UserID: match.UserID(uid), Descriptor: d, CreatedAt: created})
		return nil
	})
	return ss, err
}

func (s *sqlStore) FaceChanges(ctx context.Context, after int64) ([]FaceChange, error) {
	var cs []FaceChange
	err := s.d.query(ctx, `select seq, user_id from face_changes where seq > $1 order by seq`, []any{after},
		func(scan func(...any) error) error {
			var c FaceChange
			var uid int64
			err := scan(&c.Seq, &uid)
			c.UserID = match.UserID(uid)
			cs = append(cs, c)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("read face changes: %w", err)
	}
	return cs, nil
}

func (s *sqlStore) LastFaceChange(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.d.one(ctx, `select coalesce(max(seq), 0) from face_changes`, nil, &seq); err != nil {
		return 0, fmt.Errorf("read last face change: %w", err)
	}
	return seq, nil
}

const sessionCols = `id_hash, user_id, stage, method, client, created_at, last_seen, expires_at`

func (s *sqlStore) CreateSession(ctx context.Context, ss Session) error {
	if ss.IDHash == "" {
		return errors.New("create session: empty id hash")
	}
	if ss.CreatedAt.IsZero() {
		ss.CreatedAt = s.now()
	}
	if ss.LastSeen.IsZero() {
		ss.LastSeen = ss.CreatedAt
	}
	_, err := s.d.exec(ctx, `insert into sessions (`+sessionCols+`) values ($1, $2, $3, $4, $5, $6, $7, $8)`,
		ss.IDHash, nullID(int64(ss.UserID)), string(ss.Stage), ss.Method, ss.Client,
		micros(ss.CreatedAt), micros(ss.LastSeen), micros(ss.ExpiresAt))
	switch {
	case s.d.isUnique(err):
		return fmt.Errorf("create session: %w", ErrConflict)
	case s.d.isForeignKey(err):
		return fmt.Errorf("create session: user %d: %w", ss.UserID, ErrNotFound)
	case err != nil:
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

func (s *sqlStore) Session(ctx context.Context, idHash string, now time.Time) (Session, error) {
	ss, found, err := queryRow(ctx, s.d, `select `+sessionCols+` from sessions where id_hash = $1 and expires_at > $2`,
		[]any{idHash, micros(now)}, func(scan func(...any) error) (Session, error) {
			var ss Session
			var uid int64
			var stage string
			err := scan(&ss.IDHash, idCol{&uid}, &stage, &ss.Method, &ss.Client,
				timeCol{&ss.CreatedAt}, timeCol{&ss.LastSeen}, timeCol{&ss.ExpiresAt})
			ss.UserID, ss.Stage = match.UserID(uid), SessionStage(stage)
			return ss, err
		})
	if err != nil {
		return Session{}, fmt.Errorf("read session: %w", err)
	}
	if !found {
		return Session{}, fmt.Errorf("session: %w", ErrNotFound)
	}
	return ss, nil
}

func (s *sqlStore) UpdateSession(ctx context.Context, ss Session) error {
	n, err := s.d.exec(ctx, `update sessions set user_id = $2, stage = $3, method = $4, client = $5, last_seen = $6, expires_at = $7
		where id_hash = $1`,
		ss.IDHash, nullID(int64(ss.UserID)), string(ss.Stage), ss.Method, ss.Client, micros(ss.LastSeen), micros(ss.ExpiresAt))
	switch {
	case s.d.isForeignKey(err):
		return fmt.Errorf("update session: user %d: %w", ss.UserID, ErrNotFound)
	case err != nil:
		return fmt.Errorf("update session: %w", err)
	case n == 0:
		return fmt.Errorf("update session: %w", ErrNotFound)
	}
	return nil
}

func (s *sqlStore) DeleteSession(ctx context.Context, idHash string) error {
	if _, err := s.d.exec(ctx, `delete from sessions where id_hash = $1`, idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

func (s *sqlStore) DeleteUserSessions(ctx context.Context, id match.UserID) error {
	if _, err := s.d.exec(ctx, `delete from sessions where user_id = $1`, int64(id)); err != nil {
		return fmt.Errorf("delete sessions of user %d: %w", id, err)
	}
	return nil
}

func (s *sqlStore) DeleteExpiredSessions(ctx context.Context, now, idleBefore time.Time) (int, error) {
	n, err := s.d.exec(ctx, `delete from sessions where expires_at <= $1 or last_seen < $2`, micros(now), micros(idleBefore))
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return int(n), nil
}

func (s *sqlStore) AddLogin(ctx context.Context, e LoginEvent) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	_, err := s.d.exec(ctx, `insert into logins (user_id, at, method, client, success) values ($1, $2, $3, $4, $5)`,
		int64(e.UserID), micros(e.At), e.Method, e.Client, e.Success)
	if s.d.isForeignKey(err) {
		return fmt.Errorf("add login: user %d: %w", e.UserID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("add login: %w", err)
	}
	return nil
}

func (s *sqlStore) Logins(ctx context.Context, id match.UserID, limit int) ([]LoginEvent, error) {
	if limit <= 0 {
		return nil, nil
	}
	var es []LoginEvent
	err := s.d.query(ctx, `select user_id, at, method, client, success from logins where user_id = $1 order by at desc, id desc limit $2`,
		[]any{int64(id), int64(limit)}, func(scan func(...any) error) error {
			var e LoginEvent
			var uid int64
			err := scan(&uid, timeCol{&e.At}, &e.Method, &e.Client, &e.Success)
			e.UserID = match.UserID(uid)
			es = append(es, e)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("read logins of user %d: %w", id, err)
	}
	return es, nil
}

// AddFailure records a failure and prunes failures older than failureRetention before at.
func (s *sqlStore) AddFailure(ctx context.Context, key string, at time.Time) error {
	err := s.d.inTx(ctx, func(tx conn) error {
		if _, err := tx.exec(ctx, `delete from failures where at < $1`, micros(at.Add(-failureRetention))); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `insert into failures (key, at) values ($1, $2)`, key, micros(at))
		return err
	})
	if err != nil {
		return fmt.Errorf("add failure: %w", err)
	}
	return nil
}

func (s *sqlStore) Failures(ctx context.Context, key string, since time.Time) (int, error) {
	var n int64
	if err := s.d.one(ctx, `select count(*) from failures where key = $1 and at >= $2`, []any{key, micros(since)}, &n); err != nil {
		return 0, fmt.Errorf("count failures: %w", err)
	}
	return int(n), nil
}

func (s *sqlStore) ClearFailures(ctx context.Context, key string) error {
	if _, err := s.d.exec(ctx, `delete from failures where key = $1`, key); err != nil {
		return fmt.Errorf("clear failures: %w", err)
	}
	return nil
}

// RotateKey re-seals, in batches of rotateBatch per transaction, every sample not yet sealed
// with the primary key. A sample replaced or deleted meanwhile is left alone.
func (s *sqlStore) RotateKey(ctx context.Context) (int, error) {
	primary := s.keys.Primary()
	var last int64
	total := 0
	for {
		type row struct {
			id, user int64
			blob     []byte
		}
		var batch []row
		err := s.d.query(ctx, `select id, user_id, sealed from face_samples where id > $1 order by id limit $2`,
			[]any{last, int64(rotateBatch)}, func(scan func(...any) error) error {
				var r row
				err := scan(&r.id, &r.user, &r.blob)
				batch = append(batch, r)
				return err
			})
		if err != nil {
			return total, fmt.Errorf("rotate key: read samples: %w", err)
		}
		if len(batch) == 0 {
			return total, nil
		}
		last = batch[len(batch)-1].id
		n := 0
		err = s.d.inTx(ctx, func(tx conn) error {
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

func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.d.ping(ctx); err != nil {
		return fmt.Errorf("ping store: %w", err)
	}
	return nil
}

func (s *sqlStore) Close() error { return s.d.close() }
