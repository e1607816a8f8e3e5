package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	db "github.com/gatehouse/gatehouse/gen/db"
	"github.com/gatehouse/gatehouse/internal/account"
)

// classify turns a driver error into the domain's, once for every query
// (they all run on a classifyingDB): an unreachable, restarting or
// overloaded PostgreSQL is account.ErrUnavailable (503, not 500); the
// live-email index's unique violation is account.ErrEmailTaken; the email
// column's check (an address NFC made too long) is account.ErrEmailTooLong.
// Those two drop the driver's error: its detail quotes the address.
// Other errors, pgx.ErrNoRows included, pass unchanged: what a missing row
// means is the caller's to say (see notFound).
func classify(err error) error {
	if err == nil || errors.Is(err, account.ErrUnavailable) || errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	// A failed connection first: it may wrap the server's refusal (a PgError).
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", account.ErrUnavailable, err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505" && pe.ConstraintName == "users_email_live_key":
			return account.ErrEmailTaken
		case pe.Code == "23514" && pe.ConstraintName == "users_email_check":
			return account.ErrEmailTooLong
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			pe.Code == "57P01", pe.Code == "57P03", // shutting down, starting up
			pe.Code == "53300",                     // too many connections
			pe.Code == "57014",                     // statement timeout
			pe.Code == "40P01", pe.Code == "40001": // deadlock, serialization failure: retry later
			return fmt.Errorf("%w: %w", account.ErrUnavailable, err)
		}
		return err
	}
	return err
}

// notFound says that a missing row means the record does not exist.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return account.ErrNotFound
	}
	return err
}

// classifyingDB runs the generated queries with their errors classified.
type classifyingDB struct{ db.DBTX }

func (c classifyingDB) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	t, err := c.DBTX.Exec(ctx, sql, args...)
	return t, classify(err)
}

func (c classifyingDB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	r, err := c.DBTX.Query(ctx, sql, args...)
	if err != nil {
		return r, classify(err)
	}
	return classifyingRows{r}, nil
}

func (c classifyingDB) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return classifyingRow{c.DBTX.QueryRow(ctx, sql, args...)}
}

type classifyingRows struct{ pgx.Rows }

func (r classifyingRows) Scan(dest ...any) error { return classify(r.Rows.Scan(dest...)) }
func (r classifyingRows) Err() error             { return classify(r.Rows.Err()) }

type classifyingRow struct{ pgx.Row }

func (r classifyingRow) Scan(dest ...any) error { return classify(r.Row.Scan(dest...)) }
