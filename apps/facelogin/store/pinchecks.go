package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/match"
)

// ErrCheckRunning is BeginPINCheck's answer while another PIN check of the same session has
// not ended.
var ErrCheckRunning = errors.New("another PIN check of this session is running")

// PINCheckOptions describe a PIN check about to be made in a pending session.
type PINCheckOptions struct {
	// Session is the id hash of the pending session the PIN was given in.
	Session string
	// At is the time of the check. Hold is how long the session stays claimed if the check
	// is never ended (its replica died): longer than any check takes.
	At   time.Time
	Hold time.Duration
	// Limits are reserved as by ReserveFailure.
	Limits []Limit
	// Candidates are the accounts whose PIN may match, in the order they will be tried.
	Candidates []match.UserID
	// FaceLimit, when positive, counts the check as a wrong PIN after a face match for every
	// candidate: a candidate whose face sign-in is paused is left out, and the FaceLimit-th
	// consecutive wrong PIN pauses it (User.FacePINFailures, User.FacePausedAt).
	FaceLimit int
}

// PINCheck is a PIN check begun by BeginPINCheck; end it with EndPINCheck or CancelPINCheck.
type PINCheck struct {
	// Candidates are the accounts whose PIN may now be checked: those of the options, in
	// their order, without those whose face sign-in is paused.
	Candidates []match.UserID

	session   string
	faceLimit int
	res       Reservation
}

// BeginPINCheck reserves a PIN check before any PIN is compared, in one transaction: the
// failures under every limit (a *LimitError when one is reached), the session, which must be
// pending and not held by another check (ErrCheckRunning; ErrNotFound when there is no such
// pending session), and with FaceLimit one consecutive face PIN failure of each candidate.
// So of concurrent checks, also from other replicas, one at a time runs per session and no
// more than a limit allows run at all. An empty Candidates means every candidate's face
// sign-in is paused.
func (s *Store) BeginPINCheck(ctx context.Context, o PINCheckOptions) (PINCheck, error) {
	c := PINCheck{session: o.Session, faceLimit: o.FaceLimit}
	at := micros(o.At)
	err := s.db.inTx(ctx, func(tx conn) error {
		var err error
		if c.res, err = s.reserve(ctx, tx, at, o.Limits); err != nil {
			return err
		}
		n, err := tx.exec(ctx, `update sessions set checking_until = $2
			where id_hash = $1 and stage = $3 and (checking_until is null or checking_until <= $4)`,
			o.Session, at.Add(o.Hold), string(StagePending), at)
		if err != nil {
			return err
		}
		if n == 0 {
			pending, err := count(ctx, tx, `select count(*) from sessions where id_hash = $1 and stage = $2`, o.Session, string(StagePending))
			switch {
			case err != nil:
				return err
			case pending == 0:
				return ErrNotFound
			}
			return ErrCheckRunning
		}
		if o.FaceLimit <= 0 {
			c.Candidates = slices.Clone(o.Candidates)
			return nil
		}
		kept := map[match.UserID]bool{}
		// Rows are locked in id order in every transaction, so two checks never wait for
		// each other in a circle.
		for _, id := range sortedIDs(o.Candidates) {
			n, err := tx.exec(ctx, `update users set face_pin_failures = face_pin_failures + 1,
				face_paused_at = case when face_pin_failures + 1 >= $2 then $3 else face_paused_at end
				where id = $1 and face_paused_at is null`, int64(id), o.FaceLimit, at)
			if err != nil {
				return err
			}
			kept[id] = n == 1
		}
		for _, id := range o.Candidates {
			if kept[id] {
				c.Candidates = append(c.Candidates, id)
			}
		}
		return nil
	})
	if err != nil {
		return PINCheck{}, fmt.Errorf("begin PIN check: %w", err)
	}
	return c, nil
}

// EndPINCheck ends a check and frees its session. When matched (a candidate, or 0 for none)
// is not 0 the PIN was right: the failures reserved are released, matched's consecutive
// face PIN failures start again from zero, and the other candidates get back the failure
// reserved for them (their PIN was not what was guessed at). When it is 0 everything
// reserved stays counted.
func (s *Store) EndPINCheck(ctx context.Context, c PINCheck, matched match.UserID) error {
	if err := s.endPINCheck(ctx, c, matched, matched != 0); err != nil {
		return fmt.Errorf("end PIN check: %w", err)
	}
	return nil
}

// CancelPINCheck ends a check that compared no PIN (the server was too busy): everything
// reserved is released.
func (s *Store) CancelPINCheck(ctx context.Context, c PINCheck) error {
	if err := s.endPINCheck(ctx, c, 0, true); err != nil {
		return fmt.Errorf("cancel PIN check: %w", err)
	}
	return nil
}

func (s *Store) endPINCheck(ctx context.Context, c PINCheck, matched match.UserID, undo bool) error {
	return s.db.inTx(ctx, func(tx conn) error {
		if _, err := tx.exec(ctx, `update sessions set checking_until = null where id_hash = $1`, c.session); err != nil {
			return err
		}
		if !undo {
			return nil
		}
		if err := release(ctx, tx, c.res); err != nil {
			return err
		}
		if c.faceLimit <= 0 {
			return nil
		}
		for _, id := range sortedIDs(c.Candidates) {
			var err error
			if id == matched {
				_, err = tx.exec(ctx, `update users set face_pin_failures = 0, face_paused_at = null where id = $1`, int64(id))
			} else {
				_, err = tx.exec(ctx, `update users set face_pin_failures = case when face_pin_failures > 0 then face_pin_failures - 1 else 0 end,
					face_paused_at = case when face_pin_failures - 1 < $2 then null else face_paused_at end where id = $1`, int64(id), c.faceLimit)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// ResumeFace ends a pause of the user's face sign-in and forgets their consecutive face PIN
// failures, after a sign-in with the password.
func (s *Store) ResumeFace(ctx context.Context, id match.UserID) error {
	n, err := s.db.exec(ctx, `update users set face_pin_failures = 0, face_paused_at = null where id = $1`, int64(id))
	if err != nil {
		return fmt.Errorf("resume face sign-in of user %d: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("resume face sign-in of user %d: %w", id, ErrNotFound)
	}
	return nil
}

func sortedIDs(ids []match.UserID) []match.UserID {
	s := slices.Clone(ids)
	slices.Sort(s)
	return slices.Compact(s)
}
