package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
)

// inviteRetention is how long an expired invite is kept (so an admin can still see why a
// link stopped working) before CreateInvite deletes it.
const inviteRetention = 30 * 24 * time.Hour

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

// CreateInvite stores an invite (ErrConflict when its token hash is taken), replacing the
// unused invites to the same e-mail (one open invitation per person), and deletes invites
// expired more than 30 days earlier and unused ones to e-mails that have an account now.
func (s *Store) CreateInvite(ctx context.Context, inv Invite) error {
	if err := checkRole(inv.Role); err != nil {
		return fmt.Errorf("create invite: %w", err)
	}
	if inv.TokenHash == "" {
		return errors.New("create invite: empty token hash")
	}
	if inv.CreatedAt.IsZero() {
		inv.CreatedAt = s.now()
	}
	err := s.db.inTx(ctx, func(tx conn) error {
		// Invites name people who may never enroll: forget them a while after they expire.
		if _, err := tx.exec(ctx, `delete from invites where expires_at < $1 or (used_at is null and email in (select email from users))`,
			micros(inv.CreatedAt.Add(-inviteRetention))); err != nil {
			return fmt.Errorf("prune expired invites: %w", err)
		}
		if _, err := tx.exec(ctx, `delete from invites where email = $1 and used_at is null`, inv.Email); err != nil {
			return fmt.Errorf("replace open invite: %w", err)
		}
		_, err := tx.exec(ctx, `insert into invites (`+inviteCols+`) values ($1, $2, $3, $4, $5, $6, $7, $8)`,
			inv.TokenHash, inv.Name, inv.Email, string(inv.Role), nullID(int64(inv.CreatedBy)),
			micros(inv.CreatedAt), micros(inv.ExpiresAt), micros(inv.UsedAt))
		return err
	})
	if s.db.isUnique(err) {
		return fmt.Errorf("create invite: token %w", ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create invite: %w", err)
	}
	return nil
}

// openInvite selects the open invites: unused, unexpired, and to an e-mail without an
// account (someone who enrolled otherwise since is not invited any more).
const openInvite = `used_at is null and expires_at > $1 and not exists (select 1 from users where users.email = invites.email)`

// Invite returns an open invite (unused, unexpired, its e-mail without an account) by
// token hash.
func (s *Store) Invite(ctx context.Context, tokenHash string, now time.Time) (Invite, error) {
	inv, found, err := queryRow(ctx, s.db, `select `+inviteCols+` from invites where token_hash = $2 and `+openInvite,
		[]any{micros(now), tokenHash}, scanInvite)
	if err != nil {
		return Invite{}, fmt.Errorf("read invite: %w", err)
	}
	if !found {
		return Invite{}, fmt.Errorf("invite: %w", ErrNotFound)
	}
	return inv, nil
}

// UseInvite marks an invite used; ErrNotFound if already used or expired. Of concurrent
// calls for one invite, exactly one succeeds.
func (s *Store) UseInvite(ctx context.Context, tokenHash string, now time.Time) error {
	n, err := s.db.exec(ctx, `update invites set used_at = $2 where token_hash = $1 and used_at is null and expires_at > $2`,
		tokenHash, micros(now))
	if err != nil {
		return fmt.Errorf("use invite: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("use invite: %w", ErrNotFound)
	}
	return nil
}

// InviteByEmail returns the unused invite to an e-mail without an account, expired or not
// (an admin may send an expired one again).
func (s *Store) InviteByEmail(ctx context.Context, email string) (Invite, error) {
	inv, found, err := queryRow(ctx, s.db, `select `+inviteCols+` from invites where email = $1 and used_at is null
		and not exists (select 1 from users where users.email = invites.email) order by created_at desc limit 1`, []any{email}, scanInvite)
	if err != nil {
		return Invite{}, fmt.Errorf("read invite to %s: %w", email, err)
	}
	if !found {
		return Invite{}, fmt.Errorf("invite to %s: %w", email, ErrNotFound)
	}
	return inv, nil
}

// RevokeInvite deletes the unused invites to an e-mail; ErrNotFound when there is none.
func (s *Store) RevokeInvite(ctx context.Context, email string) error {
	n, err := s.db.exec(ctx, `delete from invites where email = $1 and used_at is null`, email)
	if err != nil {
		return fmt.Errorf("revoke invite to %s: %w", email, err)
	}
	if n == 0 {
		return fmt.Errorf("revoke invite to %s: %w", email, ErrNotFound)
	}
	return nil
}

// Invites lists the open invites (see Invite), oldest first.
func (s *Store) Invites(ctx context.Context, now time.Time) ([]Invite, error) {
	invs, err := queryAll(ctx, s.db, `select `+inviteCols+` from invites where `+openInvite+` order by created_at, token_hash`,
		[]any{micros(now)}, scanInvite)
	if err != nil {
		return nil, fmt.Errorf("list invites: %w", err)
	}
	return invs, nil
}
