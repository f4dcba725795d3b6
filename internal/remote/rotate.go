package remote

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// rotateScript makes a new ed25519 host key on the host, puts it where sshd reads its
// ed25519 key, checks the configuration and reloads sshd, then prints the new public key.
// The old key is kept until sshd accepts the new one, and removed afterwards. Sessions
// already open (this one) are not interrupted by the reload.
const rotateScript = `set -eu
umask 077
sshd=$(command -v sshd || echo /usr/sbin/sshd)
conf=$("$sshd" -T)
key=$(printf '%s\n' "$conf" | awk '$1 == "hostkey" && $2 ~ /ed25519/ { print $2; exit }')
[ -n "$key" ] || key=/etc/ssh/ssh_host_ed25519_key
pidfile=$(printf '%s\n' "$conf" | awk '$1 == "pidfile" { print $2; exit }')
rm -f "$key.edgeline-new" "$key.edgeline-new.pub" "$key.edgeline-old" "$key.edgeline-old.pub"
ssh-keygen -q -t ed25519 -N '' -C '' -f "$key.edgeline-new"
if [ -e "$key" ]; then mv -f "$key" "$key.edgeline-old"; fi
if [ -e "$key.pub" ]; then mv -f "$key.pub" "$key.edgeline-old.pub"; fi
mv -f "$key.edgeline-new" "$key"
mv -f "$key.edgeline-new.pub" "$key.pub"
restore() {
  if [ -e "$key.edgeline-old" ]; then mv -f "$key.edgeline-old" "$key"; fi
  if [ -e "$key.edgeline-old.pub" ]; then mv -f "$key.edgeline-old.pub" "$key.pub"; fi
}
if ! "$sshd" -t; then
  restore
  echo "sshd refuses the new host key; the old one is back in place" >&2
  exit 1
fi
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet ssh.service 2>/dev/null; then
  systemctl reload ssh.service
elif command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet sshd.service 2>/dev/null; then
  systemctl reload sshd.service
elif [ -n "$pidfile" ] && [ -s "$pidfile" ]; then
  kill -HUP "$(cat "$pidfile")"
else
  restore
  echo "found no running sshd to reload (no active ssh.service, no $pidfile); the old host key is back in place" >&2
  exit 1
fi
rm -f "$key.edgeline-old" "$key.edgeline-old.pub"
cat "$key.pub"
`

// RotateHostKey replaces the SSH host key of the host cfg reaches with a new ed25519 key
// made on the host itself, and returns the new key's SHA256 fingerprint once a fresh
// connection pinned to it has logged in.
//
// cfg verifies the host's current key (HostKeyFingerprint or known_hosts, as every
// connection does): the new key's public half travels back only over that verified
// connection, and its private half never leaves the host. This is how a host key that
// was handed to the host through a readable channel (a cloud provider's user data) is
// retired after the first verified login. From the moment sshd reloads, the old key is
// refused: pin the returned fingerprint. If the check of the new key fails, the error
// names the fingerprint the host now has.
func RotateHostKey(ctx context.Context, cfg Config) (string, error) {
	ex, err := Dial(ctx, cfg)
	if err != nil {
		return "", err
	}
	res, err := ex.Run(ctx, Command{Intent: "rotate the SSH host key", Cmd: rotateScript, Sudo: true, Timeout: time.Minute})
	ex.Close()
	if err != nil {
		return "", err
	}
	out := strings.TrimSpace(string(res.Stdout))
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(out))
	if err != nil || pub.Type() != ssh.KeyAlgoED25519 {
		return "", &CommandError{Host: ex.Host(), Intent: "rotate the SSH host key", ExitCode: -1,
			Err: errors.New("the host did not print an ed25519 public key; check /etc/ssh on the host")}
	}
	fp := ssh.FingerprintSHA256(pub)

	check := cfg
	check.HostKeyFingerprint = fp
	// sshd re-executes itself on reload and refuses connections for a moment.
	check.Retries = max(check.Retries, DefaultRetries)
	next, err := Dial(ctx, check)
	if err == nil {
		_, err = next.Run(ctx, Command{Intent: "log in with the new host key", Cmd: "true", Timeout: time.Minute})
		next.Close()
	}
	if err != nil {
		return fp, fmt.Errorf("rotate the host key of %s: the host now has key %s, but a login pinned to it failed: %w", ex.Host(), fp, err)
	}
	return fp, nil
}
