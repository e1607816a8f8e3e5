// Package db embeds the SQL migrations so the binary can migrate the database
// it serves without any file next to it.
package db

import "embed"

// Migrations holds the goose migrations, applied by `gatehouse migrate up` and
// by the test harness when it builds its template database.
//
//go:embed migrations/*.sql
var Migrations embed.FS
