package remote

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"
)

// Config says how to reach one host over SSH. Fields left zero are taken from the user's
// ssh_config (Host alias, HostName, User, Port, IdentityFile, ProxyJump, UserKnownHostsFile),
// then from OpenSSH's defaults. Fields set here win over ssh_config, as flags do for ssh(1).
type Config struct {
	// Host is a host name, an IP address or a Host alias from ssh_config.
	Host string
	// Port is the SSH port; zero means ssh_config's Port, else 22.
	Port int
	// User is the login user; empty means ssh_config's User, else the local user.
	User string
	// KeyFiles are private key files (ed25519, RSA, ECDSA). A file with a passphrase, or
	// one that does not exist, is used through ssh-agent when an agent socket is known
	// (AgentSocket, IdentityAgent or $SSH_AUTH_SOCK): the agent then offers that key
	// only (known from the encrypted file or KEY.pub). Empty means ssh_config's
	// IdentityFile, else ~/.ssh/id_ed25519 and ~/.ssh/id_rsa when they exist, else the
	// agent's keys.
	KeyFiles []string
	// PrivateKeys are private keys given as content (OpenSSH or PEM format, unencrypted),
	// e.g. from a secret store; offered before KeyFiles. Secrets: never logged.
	PrivateKeys [][]byte
	// UseAgent also offers the keys held by ssh-agent.
	UseAgent bool
	// AgentSocket is ssh-agent's socket; empty means ssh_config's IdentityAgent, else
	// $SSH_AUTH_SOCK.
	AgentSocket string
	// KnownHostsFile verifies host keys; empty means ssh_config's UserKnownHostsFile,
	// else ~/.ssh/known_hosts.
	KnownHostsFile string
	// HostKeyFingerprint pins the host key ("SHA256:..." as ssh-keygen -lf prints it);
	// when set, the known_hosts file is not consulted for this host.
	HostKeyFingerprint string
	// TrustOnFirstUse accepts the key of a host that known_hosts does not list yet,
	// prints its fingerprint to TOFUOutput and appends it to the known_hosts file. A key
	// that differs from a listed one is still refused.
	TrustOnFirstUse bool
	// TOFUOutput receives the line naming an accepted fingerprint; nil means os.Stderr.
	TOFUOutput io.Writer
	// Jump lists bastions to go through, first to last (like ProxyJump). Empty means
	// ssh_config's ProxyJump. Jump hosts inherit KnownHostsFile, SSHConfigFile, KeyFiles
	// and PrivateKeys, UseAgent, AgentSocket, Timeout and Retries when they leave them unset.
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
	// SSHConfigFile is the ssh_config to read; empty means ~/.ssh/config when it exists,
	// "none" means none.
	SSHConfigFile string
	// SudoPassword is the login user's password for sudo, when sudo asks for one. It is
	// sent on the command's standard input, never on a command line or in a log.
	SudoPassword string
}

// Default values for zero Config fields.
const (
	DefaultTimeout = 15 * time.Second
	DefaultRetries = 3
	DefaultBackoff = 500 * time.Millisecond
	maxBackoff     = 10 * time.Second
)

// resolved is a Config with ssh_config and defaults applied.
type resolved struct {
	alias        string
	hostName     string
	port         int
	user         string
	keyFiles     []string
	privateKeys  [][]byte
	useAgent     bool
	agentSocket  string
	knownHosts   string
	fingerprint  string
	tofu         bool
	tofuOut      io.Writer
	jumps        []resolved
	timeout      time.Duration
	retries      int
	backoff      time.Duration
	sudoPassword string
}

func (r resolved) addr() string { return net.JoinHostPort(r.hostName, strconv.Itoa(r.port)) }

func (r resolved) String() string { return r.user + "@" + r.addr() }

// Validate reports the first problem with c, before anything touches the network.
func (c Config) Validate() error {
	if strings.TrimSpace(c.Host) == "" {
		return errors.New("ssh config: Host is empty; set the host name, IP address or ssh_config alias")
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
	if c.HostKeyFingerprint != "" {
		if !strings.HasPrefix(c.HostKeyFingerprint, "SHA256:") || len(c.HostKeyFingerprint) != len("SHA256:")+43 {
			return fmt.Errorf("ssh config: host key fingerprint %q for %s is not a SHA256 fingerprint; use the form ssh-keygen -lf prints (SHA256:...)", c.HostKeyFingerprint, c.Host)
		}
		if c.TrustOnFirstUse {
			return fmt.Errorf("ssh config: %s has both a pinned host key fingerprint and TrustOnFirstUse; set only one", c.Host)
		}
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

// resolve validates c and fills in ssh_config values and defaults.
func (c Config) resolve() (resolved, error) {
	if err := c.Validate(); err != nil {
		return resolved{}, err
	}
	sc, err := loadSSHConfig(c.SSHConfigFile)
	if err != nil {
		return resolved{}, err
	}
	get := func(key string) string {
		if sc == nil {
			return ""
		}
		v, _ := sc.Get(c.Host, key)
		return v
	}
	r := resolved{
		alias:        c.Host,
		hostName:     strings.Trim(c.Host, "[]"),
		port:         c.Port,
		user:         c.User,
		privateKeys:  c.PrivateKeys,
		useAgent:     c.UseAgent,
		agentSocket:  c.AgentSocket,
		knownHosts:   c.KnownHostsFile,
		fingerprint:  c.HostKeyFingerprint,
		tofu:         c.TrustOnFirstUse,
		tofuOut:      c.TOFUOutput,
		timeout:      c.Timeout,
		retries:      c.Retries,
		backoff:      c.Backoff,
		sudoPassword: c.SudoPassword,
	}
	if h := get("HostName"); h != "" {
		r.hostName = strings.ReplaceAll(h, "%h", c.Host)
	}
	if r.user == "" {
		r.user = get("User")
	}
	if r.user == "" {
		if u, err := user.Current(); err == nil {
			r.user = u.Username
		} else {
			r.user = "root"
		}
	}
	if r.port == 0 {
		if p := get("Port"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n <= 0 || n > 65535 {
				return resolved{}, fmt.Errorf("ssh config: Port %q for host %s is not a port number", p, c.Host)
			}
			r.port = n
		}
	}
	if r.port == 0 {
		r.port = 22
	}
	home, _ := os.UserHomeDir()
	expand := func(p string) string {
		p = strings.NewReplacer("%d", home, "%u", currentUser(), "%r", r.user, "%h", r.hostName, "%%", "%").Replace(p)
		if p == "~" || strings.HasPrefix(p, "~/") {
			p = filepath.Join(home, p[1:])
		}
		return p
	}
	r.keyFiles = append(r.keyFiles, c.KeyFiles...)
	if len(r.keyFiles) == 0 && sc != nil {
		ids, _ := sc.GetAll(c.Host, "IdentityFile")
		for _, id := range ids {
			r.keyFiles = append(r.keyFiles, expand(id))
		}
	}
	if len(r.keyFiles) == 0 && len(r.privateKeys) == 0 && !r.useAgent {
		for _, name := range []string{"id_ed25519", "id_rsa"} {
			p := filepath.Join(home, ".ssh", name)
			if _, err := os.Stat(p); err == nil {
				r.keyFiles = append(r.keyFiles, p)
			}
		}
	}
	for i, k := range r.keyFiles {
		r.keyFiles[i] = expand(k)
	}
	if r.agentSocket == "" {
		if a := get("IdentityAgent"); a != "" && a != "none" && a != "SSH_AUTH_SOCK" {
			r.agentSocket = expand(a)
		}
	}
	if r.agentSocket == "" {
		r.agentSocket = os.Getenv("SSH_AUTH_SOCK")
	}
	if r.knownHosts == "" {
		if f := strings.Fields(get("UserKnownHostsFile")); len(f) > 0 {
			r.knownHosts = expand(f[0])
		}
	}
	if r.knownHosts == "" {
		r.knownHosts = filepath.Join(home, ".ssh", "known_hosts")
	}
	r.knownHosts = expand(r.knownHosts)
	if r.timeout == 0 {
		r.timeout = DefaultTimeout
	}
	switch {
	case r.retries == 0:
		r.retries = DefaultRetries
	case r.retries < 0:
		r.retries = 0
	}
	if r.backoff == 0 {
		r.backoff = DefaultBackoff
	}

	jumps := c.Jump
	if len(jumps) == 0 {
		pj := get("ProxyJump")
		if pj != "" && pj != "none" {
			for _, hop := range strings.Split(pj, ",") {
				j, err := parseJump(strings.TrimSpace(hop))
				if err != nil {
					return resolved{}, fmt.Errorf("ssh config: ProxyJump of %s: %w", c.Host, err)
				}
				j.TrustOnFirstUse = c.TrustOnFirstUse
				j.TOFUOutput = c.TOFUOutput
				jumps = append(jumps, j)
			}
		}
	}
	for _, j := range jumps {
		if j.KnownHostsFile == "" {
			j.KnownHostsFile = c.KnownHostsFile
		}
		if j.SSHConfigFile == "" {
			j.SSHConfigFile = c.SSHConfigFile
		}
		if len(j.KeyFiles) == 0 && len(j.PrivateKeys) == 0 {
			j.KeyFiles = c.KeyFiles
			j.PrivateKeys = c.PrivateKeys
		}
		j.UseAgent = j.UseAgent || c.UseAgent
		if j.AgentSocket == "" {
			j.AgentSocket = c.AgentSocket
		}
		if j.Timeout == 0 {
			j.Timeout = c.Timeout
		}
		if j.Retries == 0 {
			j.Retries = c.Retries
		}
		if j.Backoff == 0 {
			j.Backoff = c.Backoff
		}
		if j.TOFUOutput == nil {
			j.TOFUOutput = c.TOFUOutput
		}
		// A jump host's own ProxyJump is not followed: the chain is given in full.
		j.Jump = nil
		jr, err := j.resolveHop()
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

// resolveHop resolves a jump host without following its own ProxyJump.
func (c Config) resolveHop() (resolved, error) {
	r, err := c.resolve()
	if err != nil {
		return resolved{}, err
	}
	r.jumps = nil
	return r, nil
}

// parseJump parses one ProxyJump hop: [user@]host[:port].
func parseJump(s string) (Config, error) {
	var c Config
	if s == "" {
		return c, errors.New("empty hop")
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		c.User, s = s[:i], s[i+1:]
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		c.Host = strings.Trim(s, "[]")
		return c, nil
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return c, fmt.Errorf("hop %q: port %q is not a number", s, port)
	}
	c.Host, c.Port = host, n
	return c, nil
}

func loadSSHConfig(path string) (*ssh_config.Config, error) {
	if path == "none" {
		return nil, nil
	}
	explicit := path != ""
	if !explicit {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, nil
		}
		path = filepath.Join(home, ".ssh", "config")
	}
	f, err := os.Open(path)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read ssh config: %w", err)
	}
	defer f.Close()
	cfg, err := ssh_config.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("parse ssh config %s: %w", path, err)
	}
	return cfg, nil
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}
