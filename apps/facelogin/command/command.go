// Package command runs the facelogin subcommands from a validated config.Config: it opens
// the store and the face engine, wires the api and web handlers, serves with graceful
// shutdown, and performs the admin tasks.
package command

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgeline/edgeline/apps/facelogin/api"
	"github.com/edgeline/edgeline/apps/facelogin/config"
	"github.com/edgeline/edgeline/apps/facelogin/face"
	"github.com/edgeline/edgeline/apps/facelogin/seal"
	"github.com/edgeline/edgeline/apps/facelogin/server"
	"github.com/edgeline/edgeline/apps/facelogin/store"
	"github.com/edgeline/edgeline/apps/facelogin/web"
)

// Run performs cfg.Command until ctx ends (servers) or the task is done (admin). Output
// meant for the operator goes to stdout; logs go to stderr as JSON lines.
func Run(ctx context.Context, cfg config.Config, stdout, stderr io.Writer) error {
	log := server.NewLogger(cfg.LogLevel, stderr)
	switch cfg.Command {
	case config.Serve, config.API:
		return serve(ctx, cfg, log)
	case config.Web:
		return server.Web(ctx, cfg, log)
	case config.Invite:
		return invite(ctx, cfg, stdout)
	case config.RotateKey:
		return rotateKey(ctx, cfg, stdout)
	}
	return fmt.Errorf("unknown command %q", cfg.Command)
}

// serve runs the api (and, for serve, the web front end in the same process).
func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if cfg.DataDir != "" && cfg.Command == config.Serve {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("create data folder: %w", err)
		}
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	pepper, err := loadPepper(cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	st.SetTimeout(cfg.StoreTimeout)
	eng, err := face.New(face.Options{ModelsDir: cfg.Models, Workers: cfg.Workers, CNN: cfg.CNN, MaxWait: cfg.RecognizerWait})
	if err != nil {
		return err
	}
	defer eng.Close()
	log.Info("face models loaded", "workers", eng.Workers(), "cnn", cfg.CNN, "seconds", time.Since(start).Seconds())

	srv, err := api.New(api.Options{
		Store:              st,
		Engine:             eng,
		Logger:             log.With("service", "api"),
		PINOptional:        !cfg.RequirePIN,
		Liveness:           cfg.Liveness,
		Pepper:             pepper,
		BootstrapToken:     cfg.BootstrapToken,
		PublicURL:          cfg.PublicURL,
		Origins:            cfg.Origins,
		InsecureCookies:    cfg.InsecureCookies,
		TrustProxy:         cfg.TrustProxy,
		IdleTimeout:        cfg.IdleTimeout,
		AbsoluteTimeout:    cfg.AbsoluteTimeout,
		AccountFailures:    cfg.AccountFailures,
		ClientFailures:     cfg.ClientFailures,
		PINMinLength:       cfg.PINMinLength,
		FacePINFailures:    cfg.FacePINFailures,
		Candidates:         cfg.Candidates,
		MaxSockets:         cfg.MaxSockets,
		MaxClientSockets:   cfg.MaxClientSockets,
		MaxBytesInFlight:   int64(cfg.BytesInFlightMB) << 20,
		SessionRate:        cfg.SessionRate,
		SignInTimeout:      cfg.SignInTimeout,
		ClientUnknownFaces: cfg.ClientUnknownFaces,
		FaceTime:           cfg.FaceTime,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	var h http.Handler = srv
	if cfg.Command == config.Serve {
		if h, err = web.New(web.Options{API: srv, Logger: log.With("service", "web"), Kiosk: cfg.Kiosk}); err != nil {
			return err
		}
	}
	if cfg.BootstrapToken != "" {
		log.Info("bootstrap token set: it works as an admin invitation while no admin exists")
	}
	return server.Listen(ctx, cfg.Addr, h, log)
}

// openStore loads (or, on the serve data dir, creates once) the descriptor key and opens
// the store.
func openStore(ctx context.Context, cfg config.Config) (*store.Store, error) {
	keys, err := loadKeys(cfg)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(cfg.DB, "sqlite:") && cfg.CreateSecrets {
		if err := os.MkdirAll(filepath.Dir(strings.TrimPrefix(cfg.DB, "sqlite:")), 0o700); err != nil {
			return nil, fmt.Errorf("create data folder: %w", err)
		}
	}
	st, err := store.Open(ctx, cfg.DB, keys)
	if err != nil {
		return nil, err
	}
	return st, nil
}

func loadKeys(cfg config.Config) (*seal.Keyring, error) {
	keys, err := seal.LoadFile(cfg.KeyFile)
	if errors.Is(err, fs.ErrNotExist) && cfg.CreateSecrets {
		if err := os.MkdirAll(filepath.Dir(cfg.KeyFile), 0o700); err != nil {
			return nil, fmt.Errorf("create data folder: %w", err)
		}
		if _, err := seal.CreateFile(cfg.KeyFile); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		keys, err = seal.LoadFile(cfg.KeyFile)
	}
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// minPepper is the shortest accepted pepper.
const minPepper = 16

// loadPepper returns the pepper from FACELOGIN_PIN_PEPPER or the pepper file, creating the
// file (mode 0600) for serve when it is missing.
func loadPepper(cfg config.Config) ([]byte, error) {
	if cfg.Pepper != "" {
		if len(cfg.Pepper) < minPepper {
			return nil, fmt.Errorf("FACELOGIN_PIN_PEPPER holds %d bytes; use at least %d random bytes (e.g. head -c 32 /dev/urandom | base64)", len(cfg.Pepper), minPepper)
		}
		return []byte(cfg.Pepper), nil
	}
	b, err := os.ReadFile(cfg.PepperFile)
	if errors.Is(err, fs.ErrNotExist) && cfg.Command == config.Serve {
		var raw [32]byte
		rand.Read(raw[:])
		f, cerr := os.OpenFile(cfg.PepperFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if cerr == nil {
			_, werr := io.WriteString(f, base64.StdEncoding.EncodeToString(raw[:])+"\n")
			cerr = errors.Join(werr, f.Sync(), f.Close())
		}
		if cerr != nil && !errors.Is(cerr, fs.ErrExist) {
			return nil, fmt.Errorf("create pepper file: %w", cerr)
		}
		b, err = os.ReadFile(cfg.PepperFile)
	}
	if err != nil {
		return nil, fmt.Errorf("read pepper file: %w", err)
	}
	p := strings.TrimSpace(string(b))
	if len(p) < minPepper {
		return nil, fmt.Errorf("pepper file %s holds %d bytes; write at least %d random bytes (e.g. head -c 32 /dev/urandom | base64 > %s)", cfg.PepperFile, len(p), minPepper, cfg.PepperFile)
	}
	return []byte(p), nil
}

// invite prints a one-time invitation link.
func invite(ctx context.Context, cfg config.Config, stdout io.Writer) error {
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	public, from := cfg.PublicURL, cfg.PublicURLFrom
	if public == "" {
		switch recorded, err := st.Setting(ctx, store.SettingPublicURL); {
		case err == nil:
			public, from = recorded, "the server's configuration (recorded when it last started)"
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
	}
	inv, err := api.CreateInvite(ctx, st, api.InviteOptions{
		Name: cfg.Name, Email: cfg.Email, Role: store.Role(cfg.Role), TTL: cfg.InviteTTL, PublicURL: public,
	})
	if err != nil {
		return err
	}
	if public == "" {
		fmt.Fprintf(stdout, "No public URL known (no server has started on this store and no --public-url was given): the link below is a path; put the address people open in front of it, or run again with --public-url https://login.example.com.\n")
	} else {
		fmt.Fprintf(stdout, "Public URL %s, from %s.\n", public, from)
	}
	fmt.Fprintf(stdout, "Invitation for %s <%s> (%s), valid until %s; it replaces any open invitation to this address. Give this link to them only; it works once:\n%s\n",
		inv.Name, inv.Email, inv.Role, inv.ExpiresAt.Local().Format(time.RFC1123), inv.URL)
	return nil
}

// rotateKey performs the re-sealing step of a key rotation (docs/security.md), or with
// --new-key / --drop-old-keys the key file steps around it.
func rotateKey(ctx context.Context, cfg config.Config, stdout io.Writer) error {
	if cfg.NewKey {
		k, err := seal.PrependFile(cfg.KeyFile)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Added key %s as the new primary of %s. Restart every replica with this file, then run facelogin admin rotate-key.\n", k.ID, cfg.KeyFile)
		return nil
	}
	keys, err := seal.LoadFile(cfg.KeyFile)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.DB, keys)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := st.RotateKey(ctx)
	if err != nil {
		return fmt.Errorf("re-seal descriptors: %w", err)
	}
	fmt.Fprintf(stdout, "Re-sealed %d face samples with key %s.\n", n, keys.Primary())
	if cfg.DropOldKeys {
		if n != 0 {
			return fmt.Errorf("%d samples were still sealed with an old key: run facelogin admin rotate-key --drop-old-keys again once it re-seals 0", n)
		}
		removed, err := seal.RetainPrimaryFile(cfg.KeyFile)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Removed keys %s from %s. Restart every replica.\n", strings.Join(removed, ", "), cfg.KeyFile)
	}
	return nil
}
