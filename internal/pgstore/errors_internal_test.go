package pgstore

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse/internal/account"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	pg := func(code, constraint string) error {
		return fmt.Errorf("query: %w", &pgconn.PgError{Code: code, ConstraintName: constraint})
	}
	for _, tc := range []struct {
		name string
		err  error
		want error // nil: the error passes unchanged
	}{
		// The address errors drop the driver's error: its detail quotes the address.
		{"the live-email index", pg("23505", "users_email_live_key"), account.ErrEmailTaken},
		{"another unique index", pg("23505", "refresh_tokens_pkey"), nil},
		{"the email length check", pg("23514", "users_email_check"), account.ErrInvalidEmail},
		{"shutting down", pg("57P01", ""), account.ErrUnavailable},
		{"connection exception", pg("08006", ""), account.ErrUnavailable},
		{"too many connections", pg("53300", ""), account.ErrUnavailable},
		{"a refused connection wrapping the server's error", &pgconn.ConnectError{}, account.ErrUnavailable},
		{"a deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), account.ErrUnavailable},
		{"no rows: the caller says what it means", pgx.ErrNoRows, nil},
		{"a syntax error is a bug, not an outage", pg("42601", ""), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := classify(tc.err)
			if tc.want == nil {
				if got != tc.err { //nolint:errorlint // unchanged means the same value
					t.Fatalf("classify(%v) = %v, want it unchanged", tc.err, got)
				}
				return
			}
			if !errors.Is(got, tc.want) {
				t.Fatalf("classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
			var pe *pgconn.PgError
			if errors.Is(tc.want, account.ErrInvalidEmail) || errors.Is(tc.want, account.ErrEmailTaken) {
				if errors.As(got, &pe) {
					t.Fatalf("classify(%v) = %v, still carrying the driver's error (and the address it quotes)", tc.err, got)
				}
			} else if !errors.Is(got, tc.err) {
				t.Fatalf("classify(%v) = %v, want it wrapped", tc.err, got)
			}
		})
	}
}
