package pgstore

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/gatehouse/gatehouse/db"
)

// Migrator applies the embedded migrations. A session lock keeps two
// instances started at once from migrating together.
type Migrator struct {
	provider *goose.Provider
	db       *sql.DB
}

// NewMigrator prepares migrations on the pool's database.
func NewMigrator(pool *pgxpool.Pool) (*Migrator, error) {
	sqlDB := stdlib.OpenDBFromPool(pool)
	m, err := newMigrator(sqlDB)
	if err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	return m, nil
}

func newMigrator(sqlDB *sql.DB) (*Migrator, error) {
	fsys, err := fs.Sub(db.Migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("open embedded migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("create migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys, goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return &Migrator{provider: p, db: sqlDB}, nil
}

// MigrateDB applies every pending migration to an open database; the test
// harness uses it to build its template database.
func MigrateDB(ctx context.Context, sqlDB *sql.DB) error {
	m, err := newMigrator(sqlDB)
	if err != nil {
		return err
	}
	return m.Up(ctx, io.Discard)
}

// Up applies every pending migration, gatehouse's then River's (the job
// queue of the mail outbox), and reports each to w.
func (m *Migrator) Up(ctx context.Context, w io.Writer) error {
	res, err := m.provider.Up(ctx)
	for _, r := range res {
		fmt.Fprintf(w, "applied %s (%s)\n", r.Source.Path, r.Duration.Round(1e6))
	}
	if err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	rm, err := rivermigrate.New(riverdatabasesql.New(m.db), nil)
	if err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	rr, err := rm.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return fmt.Errorf("migrate river up: %w", err)
	}
	for _, v := range rr.Versions {
		fmt.Fprintf(w, "applied river %03d %s (%s)\n", v.Version, v.Name, v.Duration.Round(1e6))
	}
	if len(res) == 0 && len(rr.Versions) == 0 {
		fmt.Fprintln(w, "database is up to date")
	}
	return nil
}

// Down rolls back the latest gatehouse migration (River's schema stays).
func (m *Migrator) Down(ctx context.Context, w io.Writer) error {
	r, err := m.provider.Down(ctx)
	if r != nil {
		fmt.Fprintf(w, "rolled back %s\n", r.Source.Path)
	}
	if err != nil {
		return fmt.Errorf("migrate down: %w", err)
	}
	return nil
}

// Status lists every migration and whether it is applied.
func (m *Migrator) Status(ctx context.Context, w io.Writer) error {
	st, err := m.provider.Status(ctx)
	if err != nil {
		return fmt.Errorf("migration status: %w", err)
	}
	for _, s := range st {
		applied := "pending"
		if s.State == goose.StateApplied {
			applied = "applied " + s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
		}
		fmt.Fprintf(w, "%-40s %s\n", s.Source.Path, applied)
	}
	return nil
}

// Close releases the migrator's database handle.
func (m *Migrator) Close() error { return m.db.Close() }
