package store

import (
	"context"
	"fmt"
)

// Setting names.
const (
	// SettingPublicURL is the address people open, as the last server started recorded it;
	// `facelogin admin invite` builds its links on it.
	SettingPublicURL = "public_url"
)

// SetSetting records a named value.
func (s *Store) SetSetting(ctx context.Context, name, value string) error {
	_, err := s.db.exec(ctx, `insert into settings (name, value, updated_at) values ($1, $2, $3)
		on conflict (name) do update set value = excluded.value, updated_at = excluded.updated_at`, name, value, micros(s.now()))
	if err != nil {
		return fmt.Errorf("record setting %s: %w", name, err)
	}
	return nil
}

// Setting returns a named value; ErrNotFound when it was never recorded.
func (s *Store) Setting(ctx context.Context, name string) (string, error) {
	var v string
	err := scanOne(ctx, s.db, `select value from settings where name = $1`, []any{name}, &v)
	if err != nil {
		return "", fmt.Errorf("read setting %s: %w", name, err)
	}
	return v, nil
}
