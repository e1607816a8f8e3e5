package pgstore

import (
	"context"
	"fmt"
)

// maxCounted bounds the count of queued mails: a scrape must stay cheap
// however large a backlog grows.
const maxCounted = 100000

// QueuedMails counts the mails waiting in the outbox (River jobs of kind
// "mail" that are available, scheduled or waiting for a retry), up to
// 100,000. River's tables are not part of the sqlc schema, hence the SQL here.
func (s *Store) QueuedMails(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM (
		SELECT 1 FROM river_job WHERE kind = 'mail' AND state IN ('available', 'scheduled', 'retryable') LIMIT $1
	) AS queued`, maxCounted).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count queued mails: %w", classify(err))
	}
	return n, nil
}
