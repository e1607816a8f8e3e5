package db

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// breaking are statements after which the release still running beside the
// new one (a rolling restart runs both on the migrated schema) can fail:
// its queries name what is dropped or renamed, or insert rows without a
// value the column now requires.
var breaking = []struct {
	why string
	re  *regexp.Regexp
}{
	{"drops what the running release may use", regexp.MustCompile(`(?is)\bDROP\s+(TABLE|COLUMN|VIEW|FUNCTION|TYPE)\b`)},
	{"renames what the running release uses", regexp.MustCompile(`(?is)\bRENAME\b`)},
	{"changes a column's type", regexp.MustCompile(`(?is)\bALTER\s+COLUMN\s+\S+\s+(SET\s+DATA\s+)?TYPE\b`)},
	{"makes a column required", regexp.MustCompile(`(?is)\bSET\s+NOT\s+NULL\b`)},
	{"adds a required column without a default", regexp.MustCompile(`(?is)\bADD\s+(COLUMN\s+)?[^;]*\bNOT\s+NULL\b`)},
}

var (
	lineComment = regexp.MustCompile(`--[^\n]*`)
	hasDefault  = regexp.MustCompile(`(?is)\bDEFAULT\b`)
	alterTable  = regexp.MustCompile(`(?is)\bALTER\s+TABLE\b`) // not CREATE TABLE, whose rows are all new
)

// TestMigrations_ExpandOnlyUnlessMarkedContract keeps migrations safe for a
// rolling deployment (expand, then contract; CONTRIBUTING.md): the up part
// of a migration only adds, unless it says "-- contract:" and why the
// release before it no longer uses what it removes.
func TestMigrations_ExpandOnlyUnlessMarkedContract(t *testing.T) {
	t.Parallel()
	files, err := fs.Glob(Migrations, "migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations: %v", err)
	}
	for _, f := range files {
		b, err := fs.ReadFile(Migrations, f)
		if err != nil {
			t.Fatal(err)
		}
		up, _, _ := strings.Cut(string(b), "-- +goose Down")
		if strings.Contains(up, "-- contract:") {
			continue
		}
		for _, stmt := range strings.Split(lineComment.ReplaceAllString(up, ""), ";") {
			for _, b := range breaking {
				if !b.re.MatchString(stmt) {
					continue
				}
				if strings.HasPrefix(b.why, "adds a required") && (hasDefault.MatchString(stmt) || !alterTable.MatchString(stmt)) {
					continue
				}
				t.Errorf("%s: %q %s: old and new instances run side by side on this schema during a rolling restart; "+
					"expand now and contract in a later release, marked \"-- contract: why nothing running uses it\"",
					f, strings.Join(strings.Fields(stmt), " "), b.why)
			}
		}
	}
}
