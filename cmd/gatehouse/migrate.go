package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pgstore"
)

func migrate(ctx context.Context, cfg config.Config, args []string, out io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: gatehouse migrate up|down|status")
	}
	if err := cfg.NeedServices(false); err != nil {
		return err
	}
	// The migrations hold a session advisory lock (goose's, so that two
	// instances started together do not migrate at once) across their
	// transactions: behind a pooler in transaction mode the lock would stay on
	// a server connection other clients then use, and the migrations could
	// run elsewhere. So they connect directly.
	if cfg.BehindTransactionPooler() && cfg.DatabaseDirectURL == "" {
		return errors.New("DATABASE_DIRECT_URL must be set when DATABASE_POOLER=transaction: migrations take a session lock, which needs a connection that bypasses the pooler")
	}
	pool, err := pgstore.Connect(ctx, cfg.DirectURL(), 2, pgstore.Direct)
	if err != nil {
		return err
	}
	defer pool.Close()
	m, err := pgstore.NewMigrator(pool)
	if err != nil {
		return err
	}
	defer func() { _ = m.Close() }()
	switch args[0] {
	case "up":
		return m.Up(ctx, out)
	case "down":
		return m.Down(ctx, out)
	case "status":
		return m.Status(ctx, out)
	}
	return fmt.Errorf("unknown migrate command %q: use up, down or status", args[0])
}
