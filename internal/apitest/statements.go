package apitest

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/requestid"
)

// Statements records the SQL statements the server runs on behalf of each
// request (those whose context carries a request id: the handler's own work,
// transactions and outbox inserts included, but not the background workers').
// It is a pgx.QueryTracer; pass it in Options.
type Statements struct {
	mu  sync.Mutex
	byR map[string][]string
	// background counts the other statements (the workers'), by the same
	// description.
	background map[string]int
}

// NewStatements returns an empty record.
func NewStatements() *Statements {
	return &Statements{byR: map[string][]string{}, background: map[string]int{}}
}

// TraceQueryStart implements pgx.QueryTracer.
func (s *Statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	id := requestid.From(ctx)
	// The query's name (sqlc and River name theirs) or its text with the
	// whitespace collapsed, and how many arguments it got.
	text := strings.Join(strings.Fields(d.SQL), " ")
	if rest, ok := strings.CutPrefix(text, "-- name: "); ok {
		text, _, _ = strings.Cut(rest, " ")
	}
	stmt := fmt.Sprintf("%s [%d args]", text, len(d.Args))
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == "" {
		s.background[stmt]++
		return ctx
	}
	s.byR[id] = append(s.byR[id], stmt)
	return ctx
}

// Background counts the statements run outside requests (the mail and
// maintenance workers', the revocation poll) whose description starts with
// prefix (a query's name, or its text, e.g. "LISTEN").
func (s *Statements) Background(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for stmt, c := range s.background {
		if strings.HasPrefix(stmt, prefix) {
			n += c
		}
	}
	return n
}

// TraceQueryEnd implements pgx.QueryTracer.
func (*Statements) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// Of returns the statements run for the request with this id, in order.
func (s *Statements) Of(requestID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.byR[requestID]...)
}
