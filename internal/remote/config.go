package remote

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Default login values for a Config that leaves them zero, and for ParseEndpoint.
const (
	// DefaultUser is the login user: edgeline provisions as root, or as a user that
	// may become root with passwordless sudo.
	DefaultUser = "root"
	// DefaultPort is sshd's port.
	DefaultPort = 22
)

// Config says how to reach one host over SSH. Nothing is read from the user's
// ssh_config: a run depends only on what its configuration says, so it repeats the
// same way on a workstation and in CI.
type Config struct {
	// Host is a host name or an IP address.
	Host string
	// Port is the SSH port; zero means DefaultPort.
	Port int
	// User is the login user; empty means DefaultUser.
	User string
	// KeyFiles are private key files (ed25519, RSA, ECDSA). A file with a passphrase, or
	// one that does not exist, is used through ssh-agent when an agent socket is known
	// (AgentSocket or $SSH_AUTH_SOCK): the agent then offers that key only (known from
	// the encrypted file or KEY.pub). Empty means ~/.ssh/id_ed25519 and ~/.ssh/id_rsa
	// when they exist, else the agent's keys.
	KeyFiles []string
	// PrivateKeys are private keys given as content (OpenSSH or PEM format, unencrypted),
	// e.g. from a secret store; offered before KeyFiles. Secrets: never logged.
	PrivateKeys [][]byte
	// UseAgent also offers the keys held by ssh-agent.
	UseAgent bool
	// AgentSocket is ssh-agent's socket; empty means $SSH_AUTH_SOCK.
	AgentSocket string
	// KnownHostsFile verifies host keys; empty means ~/.ssh/known_hosts.
	KnownHostsFile string
	// HostKeyFingerprint pins the host key ("SHA256:..." as ssh-keygen -lf prints it);
	// when set, the known_hosts file is not consulted for this host.
	HostKeyFingerprint string
	// Jump lists bastions to go through, first to last (like ProxyJump). Jump hosts
	// inherit KnownHostsFile, KeyFiles and PrivateKeys, UseAgent, AgentSocket, Timeout,
	// Retries and Backoff when they leave them unset.
	Jump []Config
	// Timeout bounds each connection attempt (TCP connect and SSH handshake); zero
	// means 15 seconds.
	Timeout time.Duration
	// Retries is how many more times to try when the connection itself fails (refused,
	// unreachable, timed out, reset). Authentication and host key failures are never
	// retried. Zero means 3; a negative value means no retry.
	Retries int
	// Backoff is the wait before the first retry, doubled each time up to 10 seconds;
	// zero means 500ms.
	Backoff time.Duration
}

// Default values for zero Config fields.
const (
	DefaultTimeout = 15 * time.Second
	DefaultRetries = 3
	DefaultBackoff = 500 * time.Millisecond
	maxBackoff     = 10 * time.Second
)

// resolved is a Config with defaults applied.
type resolved struct {
	hostName    string
	port        int
	user        string
	keyFiles    []string
	privateKeys [][]byte
	useAgent    bool
	agentSocket string
	knownHosts  string
	fingerprint string
	jumps       []resolved
	timeout     time.Duration
	retries     int
	backoff     time.Duration
}

func (r resolved) addr() string { return net.JoinHostPort(r.hostName, strconv.Itoa(r.port)) }

func (r resolved) String() string { return r.user + "@" + r.addr() }

// Validate reports the first problem with c, before anything touches the network.
func (c Config) Validate() error {
	if strings.TrimSpace(c.Host) == "" {
		return errors.New("ssh config: Host is empty; set the host name or IP address")
	}
	if strings.ContainsAny(c.Host, " \t\n@/") {
		return fmt.Errorf("ssh config: host %q is not a host name or address (put the user in User, the port in Port)", c.Host)
	}
	if strings.Contains(c.Host, ":") && net.ParseIP(strings.Trim(c.Host, "[]")) == nil {
		return fmt.Errorf("ssh config: host %q contains a colon; put the port in Port", c.Host)
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("ssh config: port %d for %s is out of range", c.Port, c.Host)
	}
	if c.HostKeyFingerprint != "" && !ValidFingerprint(c.HostKeyFingerprint) {
		return fmt.Errorf("ssh config: host key fingerprint %q for %s is not a SHA256 fingerprint; use the form ssh-keygen -lf prints (SHA256:...)", c.HostKeyFingerprint, c.Host)
	}
	if c.Timeout < 0 || c.Backoff < 0 {
		return fmt.Errorf("ssh config: negative timeout or backoff for %s", c.Host)
	}
	for i, j := range c.Jump {
		if err := j.Validate(); err != nil {
			return fmt.Errorf("jump host %d of %s: %w", i+1, c.Host, err)
		}
	}
	return nil
}

// ValidFingerprint reports whether s is a host key fingerprint as ssh-keygen -lf prints
// it: "SHA256:" and 43 base64 characters.
func ValidFingerprint(s string) bool {
	b64, ok := strings.CutPrefix(s, "SHA256:")
	return ok && len(b64) == 43 && strings.Trim(b64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") == ""
}

// resolve validates c and fills in defaults.
func (c Config) resolve() (resolved, error) {
	if err := c.Validate(); err != nil {
		return resolved{}, err
	}
	r := resolved{
		hostName:    strings.Trim(c.Host, "[]"),
		port:        cmp.Or(c.Port, DefaultPort),
		user:        cmp.Or(c.User, DefaultUser),
		keyFiles:    c.KeyFiles,
		privateKeys: c.PrivateKeys,
		useAgent:    c.UseAgent,
		agentSocket: cmp.Or(c.AgentSocket, os.Getenv("SSH_AUTH_SOCK")),
		knownHosts:  c.KnownHostsFile,
		fingerprint: c.HostKeyFingerprint,
		timeout:     cmp.Or(c.Timeout, DefaultTimeout),
		retries:     c.Retries,
		backoff:     cmp.Or(c.Backoff, DefaultBackoff),
	}
	home, _ := os.UserHomeDir()
	if len(r.keyFiles) == 0 && len(r.privateKeys) == 0 && !r.useAgent {
		for _, name := range []string{"id_ed25519", "id_rsa"} {
			p := filepath.Join(home, ".ssh", name)
			if _, err := os.Stat(p); err == nil {
				r.keyFiles = append(r.keyFiles, p)
			}
		}
	}
	if r.knownHosts == "" {
		r.knownHosts = filepath.Join(home, ".ssh", "known_hosts")
	}
	switch {
	case r.retries == 0:
		r.retries = DefaultRetries
	case r.retries < 0:
		r.retries = 0
	}
	for _, j := range c.Jump {
		if j.KnownHostsFile == "" {
			j.KnownHostsFile = c.KnownHostsFile
		}
		if len(j.KeyFiles) == 0 && len(j.PrivateKeys) == 0 {
			j.KeyFiles = c.KeyFiles
			j.PrivateKeys = c.PrivateKeys
		}
		j.UseAgent = j.UseAgent || c.UseAgent
		j.AgentSocket = cmp.Or(j.AgentSocket, c.AgentSocket)
		j.Timeout = cmp.Or(j.Timeout, c.Timeout)
		j.Retries = cmp.Or(j.Retries, c.Retries)
		j.Backoff = cmp.Or(j.Backoff, c.Backoff)
		// A jump host's own jump hosts are not followed: the chain is given in full.
		j.Jump = nil
		jr, err := j.resolve()
		if err != nil {
			return resolved{}, err
		}
		if len(jr.keyFiles) == 0 && len(jr.privateKeys) == 0 {
			jr.keyFiles, jr.privateKeys = r.keyFiles, r.privateKeys
		}
		r.jumps = append(r.jumps, jr)
	}
	return r, nil
}

// Endpoint is where one SSH server listens and who logs in there.
type Endpoint struct {
	User string
	Host string
	Port int
}

// String formats e as ParseEndpoint reads it, and as ssh's ProxyJump does.
func (e Endpoint) String() string {
	return e.User + "@" + net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
}

// ParseEndpoint parses [user@]host[:port] as OpenSSH reads a ProxyJump hop (the user
// ends at the last "@"; an IPv6 address with a port is written [addr]:port), filling in
// DefaultUser and DefaultPort.
func ParseEndpoint(s string) (Endpoint, error) {
	e := Endpoint{User: DefaultUser, Port: DefaultPort}
	hostPort := s
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		e.User, hostPort = s[:i], s[i+1:]
	}
	if h, port, err := net.SplitHostPort(hostPort); err == nil {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return Endpoint{}, fmt.Errorf("%q: port %q is not a TCP port", s, port)
		}
		e.Host, e.Port = h, n
	} else {
		e.Host = strings.Trim(hostPort, "[]")
	}
	if e.User == "" || strings.ContainsAny(e.User, " \t:/") {
		return Endpoint{}, fmt.Errorf("%q: the user is empty or not a user name; write [user@]host[:port]", s)
	}
	if err := (Config{Host: e.Host}).Validate(); err != nil {
		return Endpoint{}, fmt.Errorf("%q is not [user@]host[:port]", s)
	}
	return e, nil
}
