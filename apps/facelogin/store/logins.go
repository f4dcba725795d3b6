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
