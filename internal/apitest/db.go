// Package apitest is the test harness: real PostgreSQL databases cloned from a
// migrated template, throwaway Redis servers, and an in-process gatehouse
// reached through the generated client, with every response checked against
// the contract. Only tests import it.
package apitest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for pgtestdb
	"github.com/peterldowns/pgtestdb"

	"github.com/gatehouse/gatehouse/db"
	"github.com/gatehouse/gatehouse/internal/pgstore"
)

// serverURL is the PostgreSQL server the tests use: TEST_DATABASE_URL, else
// DATABASE_URL (which `make test` sets to its private cluster).
func serverURL(t testing.TB) string {
	t.Helper()
	for _, k := range []string{"TEST_DATABASE_URL", "DATABASE_URL"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	t.Fatal("no PostgreSQL for tests: run `make test` (it starts a private one) or set TEST_DATABASE_URL")
	return ""
}

func baseConfig(t testing.TB) pgtestdb.Config {
	t.Helper()
	cc, err := pgx.ParseConfig(serverURL(t))
	if err != nil {
		t.Fatalf("parse test database URL: %v", err)
	}
	return pgtestdb.Config{
		DriverName:                "pgx",
		Host:                      cc.Host,
		Port:                      fmt.Sprint(cc.Port),
		User:                      cc.User,
		Password:                  cc.Password,
		Database:                  cc.Database,
		Options:                   "sslmode=disable",
		ForceTerminateConnections: true,
	}
}

// riverVersion joins the template's hash: a River upgrade brings migrations.
const riverVersion = "river v0.51.2"

// migrator builds pgtestdb's template database with the embedded migrations;
// the template is rebuilt whenever a migration file changes.
type migrator struct{}

func (migrator) Hash() (string, error) {
	h := sha256.New()
	h.Write([]byte(riverVersion))
	err := fs.WalkDir(db.Migrations, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := db.Migrations.ReadFile(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)), err
}

func (migrator) Migrate(ctx context.Context, sqlDB *sql.DB, _ pgtestdb.Config) error {
	return pgstore.MigrateDB(ctx, sqlDB)
}

// DatabaseURL returns the URL of a fresh, migrated database of the test's own,
// dropped when the test ends.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	return pgtestdb.Custom(t, baseConfig(t), migrator{}).URL()
}

// EmptyDatabaseURL returns the URL of a fresh database with no schema at all.
func EmptyDatabaseURL(t testing.TB) string {
	t.Helper()
	return pgtestdb.Custom(t, baseConfig(t), pgtestdb.NoopMigrator{}).URL()
}

// Pool opens a pool on url, closed when the test ends.
func Pool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	return connectPool(t, url, pgstore.Direct, nil)
}

// connectPool is Pool on what via says url reaches, with tracer, when not
// nil, on every connection.
func connectPool(t testing.TB, url string, via pgstore.Via, tracer pgx.QueryTracer) *pgxpool.Pool {
	t.Helper()
	pool, err := pgstore.Connect(context.Background(), url, 8, via, func(c *pgxpool.Config) { c.ConnConfig.Tracer = tracer })
	if err != nil {
		t.Fatalf("connect to test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}
