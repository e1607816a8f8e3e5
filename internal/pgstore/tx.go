package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	db "github.com/gatehouse/gatehouse/gen/db"
)

// inTx runs fn in a transaction, committed when fn returns nil. fn gets the
// transaction (for the outbox's inserts) and the queries on it.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx, q *db.Queries) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return classify(fmt.Errorf("begin: %w", err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(tx, db.New(classifyingDB{tx})); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return classify(fmt.Errorf("commit: %w", err))
	}
	return nil
}
