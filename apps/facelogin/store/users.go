package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
)

// Role is what a user may do.
type Role string

// Roles.
const (
	RoleUser  Role = "user"
	RoleAdmin Role = "admin"
)

func checkRole(r Role) error {
	if r != RoleUser && r != RoleAdmin {
		return fmt.Errorf("unknown role %q: use %q or %q", r, RoleUser, RoleAdmin)
	}
	return nil
}

// User is an account. Secrets are kept only as hashes made by the caller.
type User struct {
	ID             match.UserID
	Name           string
	Email          string // unique, lower-cased by the caller
	Role           Role
	PasswordHash   string // argon2id PHC string, "" when unset
	PINHash        string // argon2id PHC string, "" when unset
	ConsentVersion string // version of the biometric consent text accepted, "" if none
	ConsentLang    string // language of the consent text accepted ("en", "de"), "" if none
	ConsentAt      time.Time
	FaceEnrolledAt time.Time // zero when no face data is held
	CreatedAt      time.Time
	// FacePINFailures counts the wrong PINs given after face matches since the last right
	// one; FacePausedAt is when they reached the limit and face sign-in was paused (zero
	// while it is not). Only BeginPINCheck, EndPINCheck and ResumeFace change them.
	FacePINFailures int
	FacePausedAt    time.Time
}

const userCols = `id, name, email, role, password_hash, pin_hash, consent_version, consent_at, face_enrolled_at, created_at,
	face_pin_failures, face_paused_at, consent_lang`

func scanUser(scan func(...any) error) (User, error) {
	var u User
	var id int64
	var role string
	err := scan(&id, &u.Name, &u.Email, &role, &u.PasswordHash, &u.PINHash, &u.ConsentVersion,
		timeCol{&u.ConsentAt}, timeCol{&u.FaceEnrolledAt}, timeCol{&u.CreatedAt}, &u.FacePINFailures, timeCol{&u.FacePausedAt}, &u.ConsentLang)
	u.ID, u.Role = match.UserID(id), Role(role)
	return u, err
}

// CreateUser inserts u and returns it with ID and CreatedAt set; ErrConflict when the e-mail
// is taken.
func (s *Store) CreateUser(ctx context.Context, u User) (User, error) {
	if err := checkRole(u.Role); err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.now()
	}
	u.CreatedAt = micros(u.CreatedAt)
	u.ConsentAt, u.FaceEnrolledAt = micros(u.ConsentAt), micros(u.FaceEnrolledAt)
	var id int64
	err := scanOne(ctx, s.db, `insert into users (name, email, role, password_hash, pin_hash, consent_version, consent_lang, consent_at, face_enrolled_at, created_at)
		values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) returning id`,
		[]any{u.Name, u.Email, string(u.Role), u.PasswordHash, u.PINHash, u.ConsentVersion, u.ConsentLang, u.ConsentAt, u.FaceEnrolledAt, u.CreatedAt}, &id)
	if s.db.isUnique(err) {
		return User{}, fmt.Errorf("create user: e-mail %w", ErrConflict)
	}
	if err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	u.ID = match.UserID(id)
	return u, nil
}

// User returns a user by ID.
func (s *Store) User(ctx context.Context, id match.UserID) (User, error) {
	return s.oneUser(ctx, `select `+userCols+` from users where id = $1`, int64(id))
}

// UserByEmail returns a user by (lower-cased) e-mail.
func (s *Store) UserByEmail(ctx context.Context, email string) (User, error) {
	return s.oneUser(ctx, `select `+userCols+` from users where email = $1`, email)
}

func (s *Store) oneUser(ctx context.Context, q string, arg any) (User, error) {
	u, found, err := queryRow(ctx, s.db, q, []any{arg}, scanUser)
	if err != nil {
		return User{}, fmt.Errorf("read user: %w", err)
	}
	if !found {
		return User{}, fmt.Errorf("user: %w", ErrNotFound)
	}
	return u, nil
}

// Users lists all users ordered by name.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	us, err := queryAll(ctx, s.db, `select `+userCols+` from users order by name, id`, nil, scanUser)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return us, nil
}

// UpdateUser writes name, email, role, hashes, consent and FaceEnrolledAt of u (not the
// face PIN failures, which only the PIN check methods change).
func (s *Store) UpdateUser(ctx context.Context, u User) error {
	if err := checkRole(u.Role); err != nil {
		return fmt.Errorf("update user: %w", err)
	}
	n, err := s.db.exec(ctx, `update users set name = $2, email = $3, role = $4, password_hash = $5, pin_hash = $6,
		consent_version = $7, consent_at = $8, face_enrolled_at = $9, consent_lang = $10 where id = $1`,
		int64(u.ID), u.Name, u.Email, string(u.Role), u.PasswordHash, u.PINHash, u.ConsentVersion,
		micros(u.ConsentAt), micros(u.FaceEnrolledAt), u.ConsentLang)
	if s.db.isUnique(err) {
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

// DeleteUser removes the user and everything held about them: the user row, with which
// face samples, sessions and login history go (ON DELETE CASCADE), failures recorded under
// "account:<id>" and "account:<id>:<factor>", and invites to the user's e-mail. A
// FaceChange tells the other replicas to drop the user from their index.
func (s *Store) DeleteUser(ctx context.Context, id match.UserID) error {
	return s.changeFace(ctx, fmt.Sprintf("delete user %d", id), id, func(tx conn) error {
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
		_, err = tx.exec(ctx, `delete from failures where key = $1 or key like $2`, account, account+":%")
		return err
	})
}

// CountAdmins returns how many admins exist.
func (s *Store) CountAdmins(ctx context.Context) (int, error) {
	n, err := count(ctx, s.db, `select count(*) from users where role = $1`, string(RoleAdmin))
	if err != nil {
		return 0, fmt.Errorf("count admins: %w", err)
	}
	return n, nil
}
