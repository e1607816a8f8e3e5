package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/logging"
)

// mfa runs the MFA maintenance commands. `rekey` re-encrypts every TOTP
// secret under the first key of MFA_ENCRYPTION_KEYS, so that the keys after
// it can then be dropped (key rotation).
func mfa(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 || args[0] != "rekey" {
		return errors.New("usage: gatehouse mfa rekey")
	}
	if err := cfg.NeedServices(true); err != nil {
		return err
	}
	pool, rdb, closeAll, err := connect(ctx, cfg, 2)
	if err != nil {
		return err
	}
	defer closeAll()
	level, _ := config.ParseLogLevel(cfg.LogLevel)
	accounts, err := app.NewAccounts(cfg, logging.New(stderr, cfg.LogFormat, max(level, slog.LevelWarn)), pool, rdb)
	if err != nil {
		return err
	}
	n, err := accounts.RekeyMFASecrets(ctx)
	if err != nil {
		return fmt.Errorf("re-encrypt TOTP secrets (%d done): %w", n, err)
	}
	fmt.Fprintf(stdout, "re-encrypted %d TOTP secrets under the first key of MFA_ENCRYPTION_KEYS\n", n)
	return nil
}
