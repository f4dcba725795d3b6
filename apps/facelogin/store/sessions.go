package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
)

// SessionStage says how far a session's login has come.
type SessionStage string

// Session stages.
const (
	// StageAnonymous: a pre-login session, so the login WebSocket is tied to a cookie.
	StageAnonymous SessionStage = "anonymous"
	// StagePending: the face (or password) was accepted, the second factor is still owed.
	StagePending SessionStage = "pending"
	// StageFull: fully authenticated.
	StageFull SessionStage = "full"
)

// Session is a server-side login session. IDHash is a hash of the cookie value; UserID is 0
// while the session is anonymous.
type Session struct {
	IDHash    string
	UserID    match.UserID
	Stage     SessionStage
	Method    string // "face", "face+pin", "password", ...
	Client    string // user agent / address summary shown in the profile
	CreatedAt time.Time
	LastSeen  time.Time
	ExpiresAt time.Time // absolute timeout
	// Candidates are the people a pending face session may belong to, nearest first; the
	// PIN decides which (UserID stays 0 until then).
	Candidates []match.UserID
}

const sessionCols = `id_hash, user_id, stage, method, client, created_at, last_seen, expires_at, candidates`

// formatIDs writes ids as "3,1,2", the candidates column.
func formatIDs(ids []match.UserID) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(int64(id), 10)
	}
	return strings.Join(parts, ",")
}

// parseIDs reads the candidates column.
func parseIDs(s string) ([]match.UserID, error) {
	if s == "" {
		return nil, nil
	}
	var ids []match.UserID
	for part := range strings.SplitSeq(s, ",") {
		id, err := strconv.ParseInt(part, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("candidates %q: %w", s, err)
		}
		ids = append(ids, match.UserID(id))
	}
	return ids, nil
}

func scanSession(scan func(...any) error) (Session, error) {
	var ss Session
	var uid int64
	var stage, cands string
	err := scan(&ss.IDHash, idCol{&uid}, &stage, &ss.Method, &ss.Client,
		timeCol{&ss.CreatedAt}, timeCol{&ss.LastSeen}, timeCol{&ss.ExpiresAt}, &cands)
	if err != nil {
		return ss, err
	}
	ss.UserID, ss.Stage = match.UserID(uid), SessionStage(stage)
	ss.Candidates, err = parseIDs(cands)
	return ss, err
}

// CreateSession stores a session: ErrConflict when its id hash is taken, ErrNotFound when
// its user does not exist.
func (s *Store) CreateSession(ctx context.Context, ss Session) error {
	if ss.IDHash == "" {
		return errors.New("create session: empty id hash")
	}
	if ss.CreatedAt.IsZero() {
		ss.CreatedAt = s.now()
	}
	if ss.LastSeen.IsZero() {
		ss.LastSeen = ss.CreatedAt
	}
	_, err := s.db.exec(ctx, `insert into sessions (`+sessionCols+`) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		ss.IDHash, nullID(int64(ss.UserID)), string(ss.Stage), ss.Method, ss.Client,
		micros(ss.CreatedAt), micros(ss.LastSeen), micros(ss.ExpiresAt), formatIDs(ss.Candidates))
	switch {
	case s.db.isUnique(err):
		return fmt.Errorf("create session: %w", ErrConflict)
	case s.db.isForeignKey(err):
		return fmt.Errorf("create session: user %d: %w", ss.UserID, ErrNotFound)
	case err != nil:
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// Session returns an unexpired session by ID hash.
func (s *Store) Session(ctx context.Context, idHash string, now time.Time) (Session, error) {
	ss, found, err := queryRow(ctx, s.db, `select `+sessionCols+` from sessions where id_hash = $1 and expires_at > $2`,
		[]any{idHash, micros(now)}, scanSession)
	if err != nil {
		return Session{}, fmt.Errorf("read session: %w", err)
	}
	if !found {
		return Session{}, fmt.Errorf("session: %w", ErrNotFound)
	}
	return ss, nil
}

// UpdateSession writes UserID, Stage, Method, Client, LastSeen, ExpiresAt and Candidates
// of ss.
func (s *Store) UpdateSession(ctx context.Context, ss Session) error {
	n, err := s.db.exec(ctx, `update sessions set user_id = $2, stage = $3, method = $4, client = $5, last_seen = $6, expires_at = $7,
		candidates = $8 where id_hash = $1`,
		ss.IDHash, nullID(int64(ss.UserID)), string(ss.Stage), ss.Method, ss.Client, micros(ss.LastSeen), micros(ss.ExpiresAt),
		formatIDs(ss.Candidates))
	switch {
	case s.db.isForeignKey(err):
		return fmt.Errorf("update session: user %d: %w", ss.UserID, ErrNotFound)
	case err != nil:
		return fmt.Errorf("update session: %w", err)
	case n == 0:
		return fmt.Errorf("update session: %w", ErrNotFound)
	}
	return nil
}

// DeleteSession removes one session.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	if _, err := s.db.exec(ctx, `delete from sessions where id_hash = $1`, idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteUserSessions removes all sessions of a user.
func (s *Store) DeleteUserSessions(ctx context.Context, id match.UserID) error {
	if _, err := s.db.exec(ctx, `delete from sessions where user_id = $1`, int64(id)); err != nil {
		return fmt.Errorf("delete sessions of user %d: %w", id, err)
	}
	return nil
}

// DeleteExpiredSessions removes sessions idle since before idleBefore or past ExpiresAt and
// returns how many.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now, idleBefore time.Time) (int, error) {
	n, err := s.db.exec(ctx, `delete from sessions where expires_at <= $1 or last_seen < $2`, micros(now), micros(idleBefore))
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return int(n), nil
}
