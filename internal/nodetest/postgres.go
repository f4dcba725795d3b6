package nodetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/edgeline/edgeline/internal/kubetest"
)

// PostgresAddr is where the node's PostgreSQL listens: on the bridge, so
// pods reach it as an external database, never outside this machine.
const PostgresAddr = IP + ":5433"

// Postgres starts a private PostgreSQL cluster (Debian's server package,
// the newest version installed) bound to PostgresAddr with password
// authentication for the pod range, creates database and role name with a
// random password, and returns the role's URL. It runs until Stop; a second
// call for another name adds a database to the same server.
func (n *Node) Postgres(ctx context.Context, name string) (string, error) {
	dir := filepath.Join(StateDir, "postgres")
	sock := filepath.Join(StateDir, "postgres-run")
	if !n.running("postgres") {
		bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
		if len(bins) == 0 {
			return "", errors.New("nodetest: no PostgreSQL server installed: run `make setup`")
		}
		sort.Strings(bins)
		bin := filepath.Dir(bins[len(bins)-1])
		pg, err := user.Lookup("postgres")
		if err != nil {
			return "", fmt.Errorf("nodetest: PostgreSQL runs as the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		for _, d := range []string{dir, sock} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				return "", err
			}
			if err := os.Chown(d, uid, gid); err != nil {
				return "", err
			}
		}
		as := func(args ...string) *exec.Cmd {
			cmd := exec.Command(args[0], args[1:]...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
			cmd.Dir = dir
			return cmd
		}
		if out, err := as(filepath.Join(bin, "initdb"), "-D", dir, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256").CombinedOutput(); err != nil {
			return "", fmt.Errorf("nodetest: initdb: %w\n%s", err, out)
		}
		hba := "local all all trust\nhost all all " + PodCIDR + " scram-sha-256\n"
		if err := os.WriteFile(filepath.Join(dir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
			return "", err
		}
		host, port, _ := net.SplitHostPort(PostgresAddr)
		// setpriv becomes postgres without forking, so the PID is the server's.
		if err := n.start("postgres", "setpriv", "--reuid", pg.Uid, "--regid", pg.Gid, "--clear-groups",
			filepath.Join(bin, "postgres"), "-D", dir, "-k", sock, "-p", port,
			"-c", "listen_addresses="+host, "-c", "fsync=off", "-c", "max_connections=100"); err != nil {
			return "", err
		}
		err = kubetest.Poll(ctx, 2*time.Minute, func() (bool, error) {
			if err := n.exited(); err != nil {
				return false, err
			}
			c, err := net.DialTimeout("tcp", PostgresAddr, time.Second)
			if err != nil {
				return false, nil
			}
			c.Close()
			return true, nil
		})
		if err != nil {
			return "", n.failed("postgres", err)
		}
	}
	b := make([]byte, 16)
	rand.Read(b)
	pass := hex.EncodeToString(b)
	_, port, _ := net.SplitHostPort(PostgresAddr)
	psql := func(sql string) error {
		out, err := exec.CommandContext(ctx, "psql", "-h", sock, "-p", port, "-U", "postgres", "-d", "postgres",
			"-v", "ON_ERROR_STOP=1", "-Atqc", sql).CombinedOutput()
		if err != nil {
			return fmt.Errorf("nodetest: psql %q: %w: %s", sql, err, out)
		}
		return nil
	}
	if err := psql(fmt.Sprintf("CREATE ROLE %q LOGIN PASSWORD '%s'", name, pass)); err != nil {
		return "", err
	}
	if err := psql(fmt.Sprintf("CREATE DATABASE %q OWNER %q", name, name)); err != nil {
		return "", err
	}
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", name, pass, PostgresAddr, name), nil
}

// PausePostgres stops (SIGSTOP) or resumes (SIGCONT) the node's PostgreSQL,
// the server and every backend it forked: a database that hangs, as an
// overloaded or partitioned one does, for new and open connections alike.
func (n *Node) PausePostgres(pause bool) error {
	pid, ok := n.PIDs()["postgres"]
	if !ok {
		return errors.New("nodetest: PostgreSQL is not running")
	}
	sig := syscall.SIGCONT
	if pause {
		sig = syscall.SIGSTOP
	}
	for _, p := range append([]int{pid}, descendants(pid)...) {
		if err := syscall.Kill(p, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("nodetest: signal PostgreSQL process %d: %w", p, err)
		}
	}
	return nil
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	parent := map[int]int{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		p, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 {
			parent[p], _ = strconv.Atoi(f[1])
		}
	}
	var out []int
	var walk func(int)
	walk = func(q int) {
		for c, pp := range parent {
			if pp == q {
				out = append(out, c)
				walk(c)
			}
		}
	}
	walk(pid)
	return out
}
