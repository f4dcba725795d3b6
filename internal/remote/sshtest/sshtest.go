// Package sshtest starts real OpenSSH servers as test hosts. Each host is a Debian sshd
// process with its own ed25519 host key, authorized keys and PidFile, listening on a
// loopback address, in its own mount and UTS namespaces where /etc, /usr/local, /var, /root, /home
// and /opt are private overlays and /run is a private tmpfs: what a test does on the host
// (install k3s stand-ins, add users, write /etc/rancher) never reaches the real machine.
//
// Tests need root and EDGELINE_TEST_SSHD, the path of sshd (make test sets it).
package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHD returns the sshd to run, or skips the test saying how to enable it.
func SSHD(t testing.TB) string {
	t.Helper()
	p := os.Getenv("EDGELINE_TEST_SSHD")
	if p == "" {
		t.Skip("real OpenSSH test hosts are off: set EDGELINE_TEST_SSHD=/usr/sbin/sshd (make test does)")
	}
	if os.Geteuid() != 0 {
		t.Skip("sshd test hosts need root (mount namespaces, privileged sshd)")
	}
	return p
}

// Keys are client key pairs the test hosts accept.
type Keys struct {
	// ED25519 and RSA are private key files (OpenSSH format, unencrypted).
	ED25519, RSA string
	authorized   []byte
}

// NewKeys makes an ed25519 and an RSA client key in a temporary directory.
func NewKeys(t testing.TB) *Keys {
	t.Helper()
	dir := t.TempDir()
	k := &Keys{ED25519: filepath.Join(dir, "id_ed25519"), RSA: filepath.Join(dir, "id_rsa")}
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, kk := range []struct {
		file string
		key  any
	}{{k.ED25519, edPriv}, {k.RSA, rsaPriv}} {
		blk, err := ssh.MarshalPrivateKey(kk.key, "edgeline test")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(kk.file, pem.EncodeToMemory(blk), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := ssh.NewSignerFromKey(kk.key)
		if err != nil {
			t.Fatal(err)
		}
		k.authorized = append(k.authorized, ssh.MarshalAuthorizedKey(s.PublicKey())...)
	}
	return k
}

// Options shape one test host.
type Options struct {
	// IP is the listen address; empty means a free 127.0.0.N chosen by the harness.
	IP string
	// Port is the listen port; zero means 2222.
	Port int
	// Forwarding allows TCP forwarding, for a bastion.
	Forwarding bool
	// User, when set, is created on the host (inside its namespace only) with sudo
	// rights: with Password, sudo asks for it; without, sudo asks for none (NOPASSWD).
	User, Password string
	// OwnNetwork puts the host in a new network namespace reached through a veth pair:
	// IP is then the namespace's end of the pair and Port 22.
	OwnNetwork bool
	// NetworkOf starts the host inside another host's network namespace (one started
	// with OwnNetwork): it is reachable only from there, e.g. through that host as a
	// jump host. IP should be a loopback address.
	NetworkOf *Host
	// SystemLayout lays the host out as a stock Debian or Ubuntu server: sshd reads
	// /etc/ssh/sshd_config, its host key is /etc/ssh/ssh_host_ed25519_key and its
	// PidFile /run/sshd.pid (all in the host's private overlays), so code that finds
	// and changes sshd's files on the host (sshd -T) works as on a real one.
	SystemLayout bool
	// HostKey, when set, is the host's ed25519 host key (an OpenSSH private key, as
	// cloud-init receives one in user data) instead of a new one.
	HostKey string
}

// Host is a running test host.
type Host struct {
	// IP and Port are where sshd listens; Addr joins them.
	IP   string
	Port int
	Addr string
	// HostKey is the host's public key; Fingerprint its SHA256 fingerprint.
	HostKey     ssh.PublicKey
	Fingerprint string
	// Dir holds the host's sshd_config, keys, PidFile and log.
	Dir string
	// PID is sshd's process id.
	PID int
}

// KnownHostsLine is the known_hosts line for the host.
func (h *Host) KnownHostsLine() string {
	return knownhosts.Line([]string{knownhosts.Normalize(h.Addr)}, h.HostKey)
}

// Log returns what sshd wrote to its log so far.
func (h *Host) Log() string {
	b, _ := os.ReadFile(filepath.Join(h.Dir, "sshd.log"))
	return string(b)
}

// freeAddr picks a random 127.0.0.N (N from 40 to 250; 127.0.0.11-30 are left to
// benchmarks) and a port the kernel says is free there.
func freeAddr() (string, int) {
	n, _ := rand.Int(rand.Reader, big.NewInt(211))
	ip := fmt.Sprintf("127.0.0.%d", 40+n.Int64())
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		return ip, 2222
	}
	defer l.Close()
	return ip, l.Addr().(*net.TCPAddr).Port
}

// setupScript runs inside the new mount namespace before sshd starts.
const setupScript = `set -e
D="$EDGELINE_SSHTEST_DIR"
mount -t tmpfs -o mode=0755 tmpfs "$D/ns"
for d in /etc /usr/local /var /root /home /opt; do
  mkdir -p "$D/ns/u$d" "$D/ns/w$d"
  mount -t overlay overlay -o "lowerdir=$d,upperdir=$D/ns/u$d,workdir=$D/ns/w$d" "$d"
done
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/sshd
# A fresh host: root's shell startup files as Debian ships them (bash sources ~/.bashrc
# for every command sshd runs, and this machine's may do a lot).
for f in .bashrc .profile; do
  if [ -f "/etc/skel/$f" ]; then cp "/etc/skel/$f" "/root/$f"; fi
done
if [ -n "$EDGELINE_SSHTEST_USER" ]; then
  u="$EDGELINE_SSHTEST_USER"
  id "$u" >/dev/null 2>&1 || useradd -m -s /bin/sh "$u"
  if [ -n "$EDGELINE_SSHTEST_PASSWORD" ]; then
    printf '%s:%s\n' "$u" "$EDGELINE_SSHTEST_PASSWORD" | chpasswd
    printf '%s ALL=(ALL:ALL) ALL\n' "$u" > "/etc/sudoers.d/edgeline-test-$u"
  else
    # No password at all, yet not a locked account (sshd refuses those without PAM).
    usermod -p '*' "$u"
    printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\n' "$u" > "/etc/sudoers.d/edgeline-test-$u"
  fi
  chmod 0440 "/etc/sudoers.d/edgeline-test-$u"
fi
unset EDGELINE_SSHTEST_PASSWORD
if [ -n "$EDGELINE_SSHTEST_SYSTEM" ]; then
  # Only the test host's own key: the machine's keys show through the overlay.
  rm -f /etc/ssh/ssh_host_*
  install -m 0600 "$D/ssh_host_ed25519_key" /etc/ssh/ssh_host_ed25519_key
  install -m 0644 "$D/ssh_host_ed25519_key.pub" /etc/ssh/ssh_host_ed25519_key.pub
  install -m 0644 "$D/sshd_config" /etc/ssh/sshd_config
  rm -rf /etc/ssh/sshd_config.d
  CONFIG=/etc/ssh/sshd_config
else
  CONFIG="$D/sshd_config"
fi
if [ -n "$EDGELINE_SSHTEST_WAITNET" ]; then
  i=0
  while [ ! -e "$D/net-ready" ]; do
    i=$((i+1)); [ $i -lt 200 ] || { echo "network not set up" >&2; exit 1; }
    sleep 0.05
  done
  ip link set lo up
fi
exec "$EDGELINE_SSHTEST_SSHD" -D -e -f "$CONFIG"
`

// Start starts a test host and stops it (by PID) when the test ends.
func Start(t testing.TB, keys *Keys, opt Options) *Host {
	t.Helper()
	sshd := SSHD(t)
	dir, err := os.MkdirTemp("", "sshtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// sshd reads authorized_keys as the login user: keep the directory traversable.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "ns"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := &Host{Dir: dir, IP: opt.IP, Port: opt.Port}
	var netPeer, netHost string
	if opt.OwnNetwork {
		a, b := randomNet()
		netHost, netPeer = a, b
		h.IP, h.Port = b, 22
	}
	auto := h.IP == "" && h.Port == 0
	if h.IP == "" {
		ip, port := freeAddr()
		h.IP = ip
		if h.Port == 0 {
			h.Port = port
		}
	}
	if h.Port == 0 {
		h.Port = 2222
	}
	h.Addr = net.JoinHostPort(h.IP, strconv.Itoa(h.Port))

	hostKey := []byte(opt.HostKey)
	if opt.HostKey == "" {
		_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		blk, err := ssh.MarshalPrivateKey(hostPriv, "")
		if err != nil {
			t.Fatal(err)
		}
		hostKey = pem.EncodeToMemory(blk)
	}
	signer, err := ssh.ParsePrivateKey(hostKey)
	if err != nil {
		t.Fatalf("test host key: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ssh_host_ed25519_key"), hostKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ssh_host_ed25519_key.pub"), ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	h.HostKey = signer.PublicKey()
	h.Fingerprint = ssh.FingerprintSHA256(h.HostKey)
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), keys.authorized, 0o644); err != nil {
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		err := h.launch(t, sshd, opt, netHost, netPeer)
		if err == nil {
			return h
		}
		if !auto || attempt == 5 || !errors.Is(err, errAddrInUse) {
			t.Fatal(err)
		}
		// Another test process took the address between our probe and sshd's bind.
		h.IP, h.Port = freeAddr()
		h.Addr = net.JoinHostPort(h.IP, strconv.Itoa(h.Port))
	}
}

var errAddrInUse = errors.New("address already in use")

// launch writes the host's sshd_config and starts sshd.
func (h *Host) launch(t testing.TB, sshd string, opt Options, netHost, netPeer string) error {
	dir := h.Dir
	hostKeyFile := filepath.Join(dir, "ssh_host_ed25519_key")
	pidFile := filepath.Join(dir, "sshd.pid")
	if opt.SystemLayout {
		hostKeyFile, pidFile = "/etc/ssh/ssh_host_ed25519_key", "/run/sshd.pid"
	}
	os.Remove(filepath.Join(dir, "sshd.pid"))
	forwarding := "no"
	if opt.Forwarding {
		forwarding = "yes"
	}
	cfg := fmt.Sprintf(`ListenAddress %s
HostKey %s
PidFile %s
AuthorizedKeysFile %s
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding %s
AllowAgentForwarding no
X11Forwarding no
MaxStartups 200:30:400
MaxSessions 10
LogLevel VERBOSE
Subsystem sftp internal-sftp
`, h.Addr, hostKeyFile, pidFile, filepath.Join(dir, "authorized_keys"), forwarding)
	if err := os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(cfg), 0o644); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "sshd.log"))
	if err != nil {
		return err
	}
	defer logf.Close()

	// -u: a host name of its own, so a playbook may set it.
	args := []string{"unshare", "-m", "-u", "--propagation", "private"}
	if opt.OwnNetwork {
		args = append(args, "-n")
	}
	if opt.NetworkOf != nil {
		args = append([]string{"nsenter", "-t", strconv.Itoa(opt.NetworkOf.PID), "-n"}, args...)
	}
	args = append(args, "sh", "-c", setupScript)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(),
		"EDGELINE_SSHTEST_DIR="+dir,
		"EDGELINE_SSHTEST_SSHD="+sshd,
		"EDGELINE_SSHTEST_USER="+opt.User,
		"EDGELINE_SSHTEST_PASSWORD="+opt.Password,
	)
	if opt.OwnNetwork {
		cmd.Env = append(cmd.Env, "EDGELINE_SSHTEST_WAITNET=1")
	}
	if opt.SystemLayout {
		cmd.Env = append(cmd.Env, "EDGELINE_SSHTEST_SYSTEM=1")
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start sshd: %w", err)
	}
	h.PID = cmd.Process.Pid
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
			return
		default:
		}
		// unshare, nsenter and sh exec one another, so the PID is sshd's.
		syscall.Kill(h.PID, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(h.PID, syscall.SIGKILL)
			<-exited
		}
	})
	if opt.OwnNetwork {
		if err := setupVeth(h.PID, netHost, netPeer); err != nil {
			return fmt.Errorf("test host network: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "net-ready"), nil, 0o644); err != nil {
			return err
		}
	}
	if opt.SystemLayout {
		// The PidFile is in the host's private /run, seen through its root.
		pidFile = fmt.Sprintf("/proc/%d/root/run/sshd.pid", h.PID)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(pidFile); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(h.PID) {
			break
		}
		select {
		case <-exited:
			if strings.Contains(h.Log(), "Address already in use") {
				return fmt.Errorf("sshd for test host %s: %w", h.Addr, errAddrInUse)
			}
			return fmt.Errorf("sshd for test host %s exited: %s", h.Addr, h.Log())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sshd for test host %s did not start within 10s: %s", h.Addr, h.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// randomNet picks a /30 in 10.251.0.0/16 for a veth pair: host end, namespace end.
func randomNet() (string, string) {
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<14))
	base := int(n.Int64()) * 4
	return fmt.Sprintf("10.251.%d.%d", base>>8, base&0xff+1), fmt.Sprintf("10.251.%d.%d", base>>8, base&0xff+2)
}

// setupVeth links the network namespace of pid to this one with a veth pair. The pair
// disappears with the namespace when its last process exits.
func setupVeth(pid int, hostIP, peerIP string) error {
	name := fmt.Sprintf("esh%d", pid)
	peer := name + "p"
	p := strconv.Itoa(pid)
	// Wait until the process has entered its new network namespace, or the peer would
	// land in ours.
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return err
	}
	for i := 0; ; i++ {
		ns, err := os.Readlink("/proc/" + p + "/ns/net")
		if err != nil {
			return err
		}
		if ns != self {
			break
		}
		if i == 500 {
			return errors.New("the host did not enter its network namespace")
		}
		time.Sleep(10 * time.Millisecond)
	}
	steps := [][]string{
		{"ip", "link", "add", name, "type", "veth", "peer", "name", peer, "netns", p},
		{"ip", "addr", "add", hostIP + "/30", "dev", name},
		{"ip", "link", "set", name, "up"},
		{"nsenter", "-t", p, "-n", "ip", "addr", "add", peerIP + "/30", "dev", peer},
		{"nsenter", "-t", p, "-n", "ip", "link", "set", peer, "up"},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			exec.Command("ip", "link", "del", name).Run()
			return fmt.Errorf("%s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	return nil
}

// WriteKnownHosts writes a known_hosts file listing hosts and returns its path.
func WriteKnownHosts(t testing.TB, hosts ...*Host) string {
	t.Helper()
	var b strings.Builder
	for _, h := range hosts {
		b.WriteString(h.KnownHostsLine() + "\n")
	}
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Agent runs a real ssh-agent holding keys (private key files, added with ssh-add) and
// returns its socket; the agent stops with the test.
func Agent(t testing.TB, keys ...string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := cmd.Start(); err != nil {
		t.Skipf("ssh-agent not available (make setup installs openssh-client): %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i > 200 {
			t.Fatal("ssh-agent did not create its socket")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, key := range keys {
		add := exec.Command("ssh-add", key)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		if out, err := add.CombinedOutput(); err != nil {
			t.Fatalf("ssh-add %s: %v: %s", key, err, out)
		}
	}
	return sock
}
