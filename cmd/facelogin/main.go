// Command facelogin runs the face-login app: `serve` (web and api in one process), `api`,
// `web`, and the `admin` tasks. Run facelogin -h for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/edgeline/edgeline/apps/facelogin/command"
	"github.com/edgeline/edgeline/apps/facelogin/config"
)

func main() {
	cfg, err := config.Parse(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, config.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "facelogin:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := command.Run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "facelogin:", err)
		os.Exit(1)
	}
}
