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
}

// NewStatements returns an empty record.
func NewStatements() *Statements { return &Statements{byR: map[string][]string{}} }

// TraceQueryStart implements pgx.QueryTracer.
func (s *Statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	id := requestid.From(ctx)
	if id == "" {
		return ctx
	}
	// The query's name (sqlc and River name theirs) or its text with the
	// whitespace collapsed, and how many arguments it got.
	text := strings.Join(strings.Fields(d.SQL), " ")
	if rest, ok := strings.CutPrefix(text, "-- name: "); ok {
		text, _, _ = strings.Cut(rest, " ")
	}
	stmt := fmt.Sprintf("%s [%d args]", text, len(d.Args))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byR[id] = append(s.byR[id], stmt)
	return ctx
}

// TraceQueryEnd implements pgx.QueryTracer.
func (*Statements) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// Of returns the statements run for the request with this id, in order.
func (s *Statements) Of(requestID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.byR[requestID]...)
}
