package store

import (
	"context"
	"fmt"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
)

// LoginEvent is one entry of a user's login history.
type LoginEvent struct {
	UserID  match.UserID
	At      time.Time
	Method  string
	Client  string
	Success bool
}

// AddLogin appends to a user's login history; ErrNotFound when the user does not exist.
func (s *Store) AddLogin(ctx context.Context, e LoginEvent) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	_, err := s.db.exec(ctx, `insert into logins (user_id, at, method, client, success) values ($1, $2, $3, $4, $5)`,
		int64(e.UserID), micros(e.At), e.Method, e.Client, e.Success)
	if s.db.isForeignKey(err) {
		return fmt.Errorf("add login: user %d: %w", e.UserID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("add login: %w", err)
	}
	return nil
}

// Logins returns a user's most recent logins, at most limit, newest first.
func (s *Store) Logins(ctx context.Context, id match.UserID, limit int) ([]LoginEvent, error) {
	if limit <= 0 {
		return nil, nil
	}
	es, err := queryAll(ctx, s.db, `select user_id, at, method, client, success from logins where user_id = $1 order by at desc, id desc limit $2`,
		[]any{int64(id), int64(limit)}, func(scan func(...any) error) (LoginEvent, error) {
			var e LoginEvent
			var uid int64
			err := scan(&uid, timeCol{&e.At}, &e.Method, &e.Client, &e.Success)
			e.UserID = match.UserID(uid)
			return e, err
		})
	if err != nil {
		return nil, fmt.Errorf("read logins of user %d: %w", id, err)
	}
	return es, nil
}

// FailedPINs returns how many failed PIN sign-ins (methods ending in "+pin") a user has had
// since their last successful login, and the newest of them, at most limit, newest first:
// what the person is told at their next sign-in.
func (s *Store) FailedPINs(ctx context.Context, id match.UserID, limit int) (int, []LoginEvent, error) {
	var last time.Time
	_, _, err := queryRow(ctx, s.db, `select at from logins where user_id = $1 and success = $2 order by at desc, id desc limit 1`,
		[]any{int64(id), true}, func(scan func(...any) error) (struct{}, error) { return struct{}{}, scan(timeCol{&last}) })
	if err != nil {
		return 0, nil, fmt.Errorf("read last login of user %d: %w", id, err)
	}
	if last.IsZero() {
		last = time.Unix(0, 0)
	}
	const where = ` from logins where user_id = $1 and success = $2 and at > $3 and method like '%+pin'`
	args := []any{int64(id), false, micros(last)}
	n, err := count(ctx, s.db, `select count(*)`+where, args...)
	if err != nil {
		return 0, nil, fmt.Errorf("count failed PINs of user %d: %w", id, err)
	}
	if n == 0 || limit <= 0 {
		return n, nil, nil
	}
	es, err := queryAll(ctx, s.db, `select at, method, client`+where+` order by at desc, id desc limit $4`,
		append(args, int64(limit)), func(scan func(...any) error) (LoginEvent, error) {
			e := LoginEvent{UserID: id}
			err := scan(timeCol{&e.At}, &e.Method, &e.Client)
			return e, err
		})
	if err != nil {
		return 0, nil, fmt.Errorf("read failed PINs of user %d: %w", id, err)
	}
	return n, es, nil
}
