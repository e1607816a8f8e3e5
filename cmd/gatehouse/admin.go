package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/logging"
)

// createAdmin makes the first administrator: no default admin account exists.
// The password is read from standard input (one line), never from arguments,
// where it would sit in the shell history and the process list.
func createAdmin(ctx context.Context, cfg config.Config, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("create-admin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "the administrator's email address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *email == "" || !strings.Contains(*email, "@") {
		return errors.New("usage: gatehouse create-admin --email admin@example.com  (password on standard input)")
	}
	if err := cfg.NeedServices(true); err != nil {
		return err
	}
	pw, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read password: %w", err)
	}
	pw = strings.TrimRight(pw, "\r\n")
	pool, rdb, closeAll, err := connect(ctx, cfg, 2)
	if err != nil {
		return err
	}
	defer closeAll()
	level, _ := config.ParseLogLevel(cfg.LogLevel)
	log := logging.New(stderr, cfg.LogFormat, max(level, slog.LevelWarn))
	accounts, err := app.NewAccounts(cfg, log, pool, rdb)
	if err != nil {
		return err
	}
	u, created, err := accounts.CreateAdmin(ctx, *email, pw)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(stdout, "created administrator %s (%s)\n", u.Email, u.ID)
	} else {
		fmt.Fprintf(stdout, "granted the admin role to the existing account %s (%s); its password is unchanged\n", u.Email, u.ID)
	}
	return nil
}
