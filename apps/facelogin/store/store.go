// Package store persists the face-login app's accounts, face samples, invites, sessions and
// login history. Two implementations share one test suite: SQLite (modernc.org/sqlite), the
// embedded single-file default, and PostgreSQL (pgx) for the cluster; Open picks one by DSN
// and applies the schema migrations. Face descriptors are sealed (AES-256-GCM, package seal)
// and bound to their row before they reach a table; erased descriptors are deleted, never
// flagged.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
)

// ErrNotFound is returned when the requested record does not exist (or has expired).
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a unique value (e-mail, invite token) is already taken.
var ErrConflict = errors.New("already exists")

// Role is what a user may do.
type Role string

// Roles.
const (
	RoleUser  Role = "user"
	RoleAdmin Role = "admin"
)

// User is an account. Secrets are kept only as hashes made by the caller.
type User struct {
	ID             match.UserID
	Name           string
	Email          string // unique, lower-cased by the caller
	Role           Role
	PasswordHash   string // argon2id PHC string, "" when unset
	PINHash        string // argon2id PHC string, "" when unset
	ConsentVersion string // version of the biometric consent text accepted, "" if none
	ConsentAt      time.Time
	FaceEnrolledAt time.Time // zero when no face data is held
	CreatedAt      time.Time
}

// Invite lets one person enroll. The token itself is only ever stored hashed.
type Invite struct {
	TokenHash string
	Name      string
	Email     string
	Role      Role
	CreatedBy match.UserID // 0 for the bootstrap invite
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero while unused
}

// Sample is one enrolled face descriptor of a user.
type Sample struct {
	ID         int64
	UserID     match.UserID
	Descriptor match.Descriptor
	CreatedAt  time.Time
}

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
}

// LoginEvent is one entry of a user's login history.
type LoginEvent struct {
	UserID  match.UserID
	At      time.Time
	Method  string
	Client  string
	Success bool
}

// FaceChange records that a user's face samples changed (enrolled, replaced or erased), so
// every replica can refresh its in-memory index. It carries no biometric data.
type FaceChange struct {
	Seq    int64
	UserID match.UserID
}

// Store is what the app needs from persistence. Implementations are safe for concurrent use.
type Store interface {
	// CreateUser inserts u and returns it with ID and CreatedAt set.
	CreateUser(ctx context.Context, u User) (User, error)
	// User returns a user by ID.
	User(ctx context.Context, id match.UserID) (User, error)
	// UserByEmail returns a user by (lower-cased) e-mail.
	UserByEmail(ctx context.Context, email string) (User, error)
	// Users lists all users ordered by name.
	Users(ctx context.Context) ([]User, error)
	// UpdateUser writes name, email, role, hashes, consent and FaceEnrolledAt of u.
	UpdateUser(ctx context.Context, u User) error
	// DeleteUser removes the user and everything held about them (samples, sessions, history,
	// failures under "account:<id>" and "account:<id>:<factor>", invites to their e-mail) and
	// records a FaceChange.
	DeleteUser(ctx context.Context, id match.UserID) error
	// CountAdmins returns how many admins exist.
	CountAdmins(ctx context.Context) (int, error)

	// CreateInvite stores an invite and deletes invites expired more than 30 days earlier.
	CreateInvite(ctx context.Context, inv Invite) error
	// Invite returns an unused, unexpired invite by token hash.
	Invite(ctx context.Context, tokenHash string, now time.Time) (Invite, error)
	// UseInvite marks an invite used; ErrNotFound if already used or expired.
	UseInvite(ctx context.Context, tokenHash string, now time.Time) error
	// Invites lists unused, unexpired invites.
	Invites(ctx context.Context, now time.Time) ([]Invite, error)

	// ReplaceSamples atomically replaces all face samples of a user, sets FaceEnrolledAt and
	// records a FaceChange. ErrNotFound if the user does not exist; empty ds erases.
	ReplaceSamples(ctx context.Context, id match.UserID, ds []match.Descriptor) error
	// DeleteSamples erases all face samples of a user, clears FaceEnrolledAt and records a FaceChange.
	DeleteSamples(ctx context.Context, id match.UserID) error
	// Samples returns the samples of one user.
	Samples(ctx context.Context, id match.UserID) ([]Sample, error)
	// AllSamples returns every sample, to build the in-memory index at start.
	AllSamples(ctx context.Context) ([]Sample, error)
	// FaceChanges returns the changes after seq, oldest first. Sequence numbers are committed
	// in order on every replica, so polling from the last seen Seq misses nothing.
	FaceChanges(ctx context.Context, after int64) ([]FaceChange, error)
	// LastFaceChange returns the newest change's Seq (0 when none).
	LastFaceChange(ctx context.Context) (int64, error)

	// CreateSession stores a session.
	CreateSession(ctx context.Context, s Session) error
	// Session returns an unexpired session by ID hash.
	Session(ctx context.Context, idHash string, now time.Time) (Session, error)
	// UpdateSession writes UserID, Stage, Method, Client, LastSeen and ExpiresAt of s.
	UpdateSession(ctx context.Context, s Session) error
	// DeleteSession removes one session.
	DeleteSession(ctx context.Context, idHash string) error
	// DeleteUserSessions removes all sessions of a user.
	DeleteUserSessions(ctx context.Context, id match.UserID) error
	// DeleteExpiredSessions removes sessions idle since before idleBefore or past ExpiresAt.
	DeleteExpiredSessions(ctx context.Context, now, idleBefore time.Time) (int, error)

	// AddLogin appends to a user's login history.
	AddLogin(ctx context.Context, e LoginEvent) error
	// Logins returns a user's most recent logins, newest first.
	Logins(ctx context.Context, id match.UserID, limit int) ([]LoginEvent, error)

	// AddFailure records a failed attempt under key (e.g. "account:42", "client:1.2.3.4") and
	// prunes failures older than 24 hours.
	AddFailure(ctx context.Context, key string, at time.Time) error
	// Failures counts failures under key at or after since.
	Failures(ctx context.Context, key string, since time.Time) (int, error)
	// ClearFailures forgets the failures under key.
	ClearFailures(ctx context.Context, key string) error

	// RotateKey re-seals every descriptor with the keyring's primary key; returns how many.
	RotateKey(ctx context.Context) (int, error)
	// Ping checks the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store.
	Close() error
}
