package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/edgeline/edgeline/apps/facelogin/seal"
)

// TestLoadBalancing runs the cluster's shape on loopback: a real nginx (round robin, with
// WebSocket upgrade headers) in front of two `facelogin api` processes that share one
// PostgreSQL database, and `facelogin web` for the pages. Amy enrolls through one api;
// that api is stopped and she signs in through the other, which learned her face from the
// database without a restart; then the first comes back, the second is stopped, and her
// session and history are intact and the next login succeeds.
func TestLoadBalancing(t *testing.T) {
	c := needConfig(t)
	nginx := os.Getenv("EDGELINE_TEST_NGINX")
	if nginx == "" {
		t.Skip("set EDGELINE_TEST_NGINX to Debian's /usr/sbin/nginx (make test does when it is installed)")
	}
	pgDSN := os.Getenv("EDGELINE_TEST_POSTGRES")
	if pgDSN == "" {
		t.Skip("set EDGELINE_TEST_POSTGRES to a PostgreSQL DSN (make test does, starting one with hack/postgres.sh)")
	}
	bin := binary(t, c)
	dir := t.TempDir()
	dsn := freshDatabase(t, pgDSN)

	public, pool := freeAddr(t), freeAddr(t)
	apiAddrs := []string{freeAddr(t), freeAddr(t)}
	webAddr := freeAddr(t)
	base := "http://" + public

	// Both replicas share the descriptor key and the PIN pepper, as the cluster's Secret does.
	keyFile := filepath.Join(dir, "descriptor.key")
	if _, err := seal.CreateFile(keyFile); err != nil {
		t.Fatal(err)
	}
	pepperFile := secretFile(t, dir, "pin.pepper")
	env := []string{
		"FACELOGIN_DB=" + dsn,
		"FACELOGIN_MODELS=" + c.models,
		"FACELOGIN_KEY_FILE=" + keyFile,
		"FACELOGIN_PIN_PEPPER_FILE=" + pepperFile,
		"FACELOGIN_ORIGINS=" + base + ",http://" + webAddr,
		"FACELOGIN_PUBLIC_URL=" + base,
	}
	apis := make([]*proc, 2)
	startAPI := func(i int) {
		apis[i] = start(t, dir, fmt.Sprintf("api%d", i+1), env, bin, "api", "--addr", apiAddrs[i], "--insecure-cookies", "--trust-proxy")
		waitReady(t, apis[i], "http://"+apiAddrs[i]+"/readyz", 90*time.Second)
	}
	startAPI(0)
	startAPI(1)
	ng := startNginx(t, nginx, dir, public, pool, webAddr, apiAddrs)
	web := start(t, dir, "web", env, bin, "web", "--addr", webAddr, "--api-url", "http://"+pool)
	waitReady(t, web, "http://"+webAddr+"/readyz", 30*time.Second)
	waitReady(t, ng.p, base+"/readyz", 30*time.Second)

	path := invite(t, env, bin, amyName, amyEmail, "user")
	cams := t.TempDir()

	enrollCam := newChrome(t, c, "lb-amy-enroll", posesCamera(t, c, cams, "amy", 1, 2, 5), browserOpts{})
	enroll(enrollCam, c, base, path, "")
	first := ng.servedBy(t, "GET", "/api/ws/enroll")
	i := indexOf(apiAddrs, first)
	if i < 0 {
		t.Fatalf("enrollment served by %q, not one of %v", first, apiAddrs)
	}
	other := 1 - i
	enrollCam.do("open the profile", 30*time.Second,
		chromedp.Navigate(base+"/profile"), chromedp.WaitVisible(css("#me")))
	logout(enrollCam)
	enrollCam.close()

	// The api that took the enrollment goes away; the other one must know Amy's face.
	apis[i].stop()
	amy := newChrome(t, c, "lb-amy-login", posesCamera(t, c, cams, "amy", 3, 4, 5), browserOpts{})
	if got := faceLogin(amy, base, 60*time.Second); got != "pin" {
		t.Fatalf("login through the other api ended with %q: %s", got, amy.describe())
	}
	if by := ng.servedBy(t, "GET", "/api/ws/login"); by != apiAddrs[other] {
		t.Fatalf("login WebSocket served by %q, want the other api %s", by, apiAddrs[other])
	}
	enterPIN(amy, amyPIN)
	if !hasFaceLogin(loginHistory(amy)) {
		t.Fatalf("no face login in the history: %s", describeRows(loginHistory(amy)))
	}

	// Mid-journey the api that served the login stops; the session lives in PostgreSQL.
	startAPI(i)
	apis[other].stop()
	amy.do("reload the profile", 30*time.Second,
		chromedp.Navigate(base+"/profile"), chromedp.WaitVisible(css("#me")))
	if got := amy.text("#me-name"); got != amyName {
		t.Fatalf("profile after the api switch shows %q", got)
	}
	if !hasFaceLogin(loginHistory(amy)) {
		t.Fatalf("history lost after the api switch: %s", describeRows(loginHistory(amy)))
	}
	logout(amy)
	if got := faceLogin(amy, base, 60*time.Second); got != "pin" {
		t.Fatalf("second login ended with %q: %s", got, amy.describe())
	}
	enterPIN(amy, amyPIN)
	if by := ng.servedBy(t, "GET", "/api/ws/login"); by != apiAddrs[i] {
		t.Errorf("second login served by %q, want %s", by, apiAddrs[i])
	}

	// Without an ingress the web service routes /api/ itself (reverse proxy, WebSocket
	// included), as `facelogin web` does on a single host.
	direct := "http://" + webAddr
	if got := faceLogin(amy, direct, 60*time.Second); got != "pin" {
		t.Fatalf("login through facelogin web alone ended with %q: %s", got, amy.describe())
	}
	enterPIN(amy, amyPIN)
	if got := amy.text("#me-name"); got != amyName {
		t.Errorf("profile through facelogin web shows %q", got)
	}
}

// freshDatabase creates an empty database on the server of dsn, dropped when the test ends,
// and returns its DSN.
func freshDatabase(t *testing.T, dsn string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	name := "facelogin_e2e_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Logf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse EDGELINE_TEST_POSTGRES: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// secretFile writes 32 random bytes, hex-encoded, to a 0600 file.
func secretFile(t *testing.T, dir, name string) string {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// nginxProc is a private nginx: its own prefix, config, pid file and logs in a temp folder.
type nginxProc struct {
	p         *proc
	accessLog string
}

func startNginx(t *testing.T, bin, dir, public, pool, web string, apis []string) *nginxProc {
	t.Helper()
	prefix := filepath.Join(dir, "nginx")
	for _, d := range []string{"logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	userLine := ""
	if os.Geteuid() == 0 {
		// Workers would drop to nobody, who cannot write the private temp folders.
		if u, err := user.Current(); err == nil {
			userLine = "user " + u.Username + ";"
		}
	}
	var servers strings.Builder
	for _, a := range apis {
		fmt.Fprintf(&servers, "    server %s max_fails=0;\n", a)
	}
	conf := fmt.Sprintf(`%[1]s
worker_processes 1;
daemon off;
pid %[2]s/nginx.pid;
error_log %[2]s/logs/error.log notice;
events { worker_connections 512; }
http {
  log_format upstream '$request_method $uri $status $upstream_addr';
  access_log %[2]s/logs/access.log upstream;
  client_body_temp_path %[2]s/tmp/body;
  proxy_temp_path %[2]s/tmp/proxy;
  fastcgi_temp_path %[2]s/tmp/fastcgi;
  uwsgi_temp_path %[2]s/tmp/uwsgi;
  scgi_temp_path %[2]s/tmp/scgi;
  client_max_body_size 20m;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  # Every location passes WebSocket upgrades and the client's host and address on.
  proxy_http_version 1.1;
  proxy_set_header Upgrade $http_upgrade;
  proxy_set_header Connection $connection_upgrade;
  proxy_set_header Host $http_host;
  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
  proxy_set_header X-Forwarded-Proto $scheme;
  upstream api_pool {
%[3]s  }
  upstream web { server %[4]s; }
  # What the browser talks to: pages from web, /api/ (and the login WebSocket) from the pool.
  server {
    listen %[5]s;
    location /api/ {
      proxy_pass http://api_pool;
      proxy_next_upstream error timeout;
      proxy_read_timeout 120s;
    }
    location / {
      proxy_pass http://web;
    }
  }
  # The api service address the web process uses, as a cluster Service would balance it.
  server {
    listen %[6]s;
    location / {
      proxy_pass http://api_pool;
      proxy_next_upstream error timeout;
    }
  }
}
`, userLine, prefix, servers.String(), web, public, pool)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-t", "-p", prefix, "-c", confPath).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	p := start(t, dir, "nginx", nil, bin, "-p", prefix, "-c", confPath)
	l := logsOf(t)
	l.mu.Lock()
	l.paths = append(l.paths, filepath.Join(prefix, "logs", "error.log"), filepath.Join(prefix, "logs", "access.log"))
	l.mu.Unlock()
	return &nginxProc{p: p, accessLog: filepath.Join(prefix, "logs", "access.log")}
}

// servedBy returns the upstream address that served the last method+path request that
// reached an api (a retried request lists the failed upstream first).
func (n *nginxProc) servedBy(t *testing.T, method, path string) string {
	t.Helper()
	// nginx writes a WebSocket's line when it closes; give it a moment.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if by := n.lastUpstream(method, path); by != "" || time.Now().After(deadline) {
			if by == "" {
				t.Fatalf("nginx logged no %s %s:\n%s", method, path, tail(n.accessLog, 30))
			}
			return by
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (n *nginxProc) lastUpstream(method, path string) string {
	f, err := os.Open(n.accessLog)
	if err != nil {
		return ""
	}
	defer f.Close()
	last := ""
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.SplitN(s.Text(), " ", 4)
		if len(fields) == 4 && fields[0] == method && fields[1] == path && fields[3] != "-" {
			ups := strings.Split(fields[3], ", ")
			last = strings.TrimSpace(ups[len(ups)-1])
		}
	}
	return last
}
