// Command facelogin-web runs the face-login web front end alone: `facelogin-web web
// [flags]` is `facelogin web [flags]`, without the recognition engine, so it builds
// without cgo (CGO_ENABLED=0) into a static binary: the facelogin-web image.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/edgeline/edgeline/apps/facelogin/config"
	"github.com/edgeline/edgeline/apps/facelogin/server"
)

func main() {
	args := os.Args[1:]
	if len(args) == 0 || strings.HasPrefix(args[0], "-") && !isHelp(args[0]) {
		args = append([]string{"web"}, args...) // the only command, so it may be left out
	}
	if args[0] != "web" && !isHelp(args[0]) {
		fmt.Fprintf(os.Stderr, "facelogin-web: %q: this program runs only the web front end (facelogin-web web [flags]); the other commands are in facelogin\n", args[0])
		os.Exit(2)
	}
	cfg, err := config.Parse(args, os.Getenv, os.Stderr)
	if errors.Is(err, config.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "facelogin-web:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := server.Web(ctx, cfg, server.NewLogger(cfg.LogLevel, os.Stderr)); err != nil {
		fmt.Fprintln(os.Stderr, "facelogin-web:", err)
		os.Exit(1)
	}
}

func isHelp(s string) bool {
	return s == "-h" || s == "-help" || s == "--help" || s == "help"
}
