create table if not exists schema_migrations (
	version integer primary key,
	name text not null,
	applied_at text not null default current_timestamp
);

-- migration 1: initial schema
create table users (
	id integer primary key autoincrement,
	name text not null,
	email text not null unique,
	role text not null,
	password_hash text not null default '',
	pin_hash text not null default '',
	consent_version text not null default '',
	consent_at integer,
	face_enrolled_at integer,
	created_at integer not null
);
create table invites (
	token_hash text primary key,
	name text not null,
	email text not null,
	role text not null,
	created_by integer,
	created_at integer not null,
	expires_at integer not null,
	used_at integer
);
create table face_samples (
	id integer primary key autoincrement,
	user_id integer not null references users (id) on delete cascade,
	sealed blob not null,
	created_at integer not null
);
create index face_samples_user on face_samples (user_id);
create table face_changes (
	seq integer primary key autoincrement,
	user_id integer not null,
	at integer not null
);
create table sessions (
	id_hash text primary key,
	user_id integer references users (id) on delete cascade,
	stage text not null,
	method text not null default '',
	client text not null default '',
	created_at integer not null,
	last_seen integer not null,
	expires_at integer not null
);
create index sessions_user on sessions (user_id);
create index sessions_expiry on sessions (expires_at);
create table logins (
	id integer primary key autoincrement,
	user_id integer not null references users (id) on delete cascade,
	at integer not null,
	method text not null,
	client text not null,
	success integer not null
);
create index logins_user_at on logins (user_id, at);
create table failures (
	id integer primary key autoincrement,
	key text not null,
	at integer not null
);
create index failures_key_at on failures (key, at);
create index failures_at on failures (at);
