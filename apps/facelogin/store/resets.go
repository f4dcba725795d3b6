package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
)

// Reset is a one-time link an admin issued so a person can set a new password and/or PIN.
// The token itself is only ever stored hashed.
type Reset struct {
	TokenHash string
	UserID    match.UserID
	Password  bool // the link sets a new password
	PIN       bool // the link sets a new PIN
	CreatedBy match.UserID
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero while unused
}

const resetCols = `token_hash, user_id, password, pin, created_by, created_at, expires_at, used_at`

func scanReset(scan func(...any) error) (Reset, error) {
	var r Reset
	var user, by int64
	err := scan(&r.TokenHash, &user, &r.Password, &r.PIN, idCol{&by}, timeCol{&r.CreatedAt}, timeCol{&r.ExpiresAt}, timeCol{&r.UsedAt})
	r.UserID, r.CreatedBy = match.UserID(user), match.UserID(by)
	return r, err
}

// CreateReset stores a reset link, replacing the unused ones of the same person (one open
// link each), and deletes links expired or used more than 30 days earlier. ErrNotFound when
// the person does not exist; ErrConflict when the token hash is taken.
func (s *Store) CreateReset(ctx context.Context, r Reset) error {
	if r.TokenHash == "" || (!r.Password && !r.PIN) {
		return errors.New("create reset link: it needs a token hash and a password or PIN to set")
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.now()
	}
	err := s.db.inTx(ctx, func(tx conn) error {
		if _, err := tx.exec(ctx, `delete from resets where expires_at < $1 or used_at < $1`, micros(r.CreatedAt.Add(-inviteRetention))); err != nil {
			return fmt.Errorf("prune reset links: %w", err)
		}
		if _, err := tx.exec(ctx, `delete from resets where user_id = $1 and used_at is null`, int64(r.UserID)); err != nil {
			return fmt.Errorf("replace open reset link: %w", err)
		}
		_, err := tx.exec(ctx, `insert into resets (`+resetCols+`) values ($1, $2, $3, $4, $5, $6, $7, $8)`,
			r.TokenHash, int64(r.UserID), r.Password, r.PIN, nullID(int64(r.CreatedBy)), micros(r.CreatedAt), micros(r.ExpiresAt), micros(r.UsedAt))
		return err
	})
	switch {
	case s.db.isUnique(err):
		return fmt.Errorf("create reset link: token %w", ErrConflict)
	case s.db.isForeignKey(err):
		return fmt.Errorf("create reset link: user %d: %w", r.UserID, ErrNotFound)
	case err != nil:
		return fmt.Errorf("create reset link: %w", err)
	}
	return nil
}

// Reset returns an unused, unexpired reset link by token hash.
func (s *Store) Reset(ctx context.Context, tokenHash string, now time.Time) (Reset, error) {
	r, found, err := queryRow(ctx, s.db, `select `+resetCols+` from resets where token_hash = $1 and used_at is null and expires_at > $2`,
		[]any{tokenHash, micros(now)}, scanReset)
	if err != nil {
		return Reset{}, fmt.Errorf("read reset link: %w", err)
	}
	if !found {
		return Reset{}, fmt.Errorf("reset link: %w", ErrNotFound)
	}
	return r, nil
}

// UseReset spends a reset link in one transaction: it marks the link used (of concurrent
// calls exactly one succeeds; ErrNotFound when it is used, expired or unknown), writes the
// new hashes the link allows (an empty one is left unchanged), clears the face PIN pause,
// ends every session of the person and adds e to their login history. It returns the
// person's id.
func (s *Store) UseReset(ctx context.Context, tokenHash string, now time.Time, passwordHash, pinHash string, e LoginEvent) (match.UserID, error) {
	var id match.UserID
	err := s.db.inTx(ctx, func(tx conn) error {
		r, found, err := queryRow(ctx, tx, `select `+resetCols+` from resets where token_hash = $1 and used_at is null and expires_at > $2`,
			[]any{tokenHash, micros(now)}, scanReset)
		if err != nil {
			return err
		}
		if !found {
			return ErrNotFound
		}
		n, err := tx.exec(ctx, `update resets set used_at = $2 where token_hash = $1 and used_at is null`, tokenHash, micros(now))
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		id = r.UserID
		if r.Password && passwordHash != "" {
			if _, err := tx.exec(ctx, `update users set password_hash = $2 where id = $1`, int64(id), passwordHash); err != nil {
				return err
			}
		}
		if r.PIN && pinHash != "" {
			if _, err := tx.exec(ctx, `update users set pin_hash = $2, face_pin_failures = 0, face_paused_at = null where id = $1`, int64(id), pinHash); err != nil {
				return err
			}
		}
		if _, err := tx.exec(ctx, `delete from sessions where user_id = $1`, int64(id)); err != nil {
			return err
		}
		_, err = tx.exec(ctx, `insert into logins (user_id, at, method, client, success) values ($1, $2, $3, $4, $5)`,
			int64(id), micros(now), e.Method, e.Client, e.Success)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("use reset link: %w", err)
	}
	return id, nil
}
