package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/logging"
	"github.com/gatehouse/gatehouse/internal/userimport"
)

const importUsage = `usage: gatehouse import users [flags] FILE   (JSON Lines; - reads standard input)
       gatehouse import status                    (accounts still on imported password hashes)

flags:
`

// importCmd moves accounts in from another system (see the README,
// "Moving from another service"). The report goes to stdout: one line per
// line not imported (refused or skipped) with its number and the reason,
// then the counts. Progress goes to stderr when it is a terminal.
func importCmd(ctx context.Context, cfg config.Config, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "status" {
		return importStatus(ctx, cfg, stdout, stderr)
	}
	fs := flag.NewFlagSet("import users", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, importUsage); fs.PrintDefaults() }
	var o userimport.Options
	fs.BoolVar(&o.DryRun, "dry-run", false, "validate every line and report what would happen; write nothing, mail no one")
	fs.BoolVar(&o.Update, "update", false, "write a changed line over the existing account with its address")
	fs.BoolVar(&o.Invite, "invite", false, "mail each account created without a password a link to choose one")
	fs.BoolVar(&o.CreateRoles, "create-roles", false, "create the roles lines name that do not exist (else such lines are refused)")
	fs.IntVar(&o.Resume, "resume", 0, "skip the lines before this line number (continue an interrupted import)")
	if len(args) == 0 || args[0] != "users" {
		fs.Usage()
		return errors.New("usage: gatehouse import users [flags] FILE")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("import users needs one FILE (or - for standard input)")
	}
	in := stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name) //nolint:gosec // the operator names the file to import
		if err != nil {
			return fmt.Errorf("open the import file: %w", err)
		}
		defer func() { _ = f.Close() }()
		in = f
	}
	if err := cfg.NeedServices(true); err != nil {
		return err
	}
	pool, rdb, closeAll, err := connect(ctx, cfg, 2)
	if err != nil {
		return err
	}
	defer closeAll()
	level, _ := config.ParseLogLevel(cfg.LogLevel)
	log := logging.New(stderr, cfg.LogFormat, max(level, slog.LevelWarn))
	svc, _, err := app.NewImporter(cfg, log, pool, rdb)
	if err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		// The live heap of an import is mostly the set of addresses seen;
		// collecting at half the default growth keeps the RSS nearer to it
		// for a little CPU, which the database's work dwarfs.
		debug.SetGCPercent(50)
	}
	o.Source = "cli"
	last := max(o.Resume-1, 0) // the last line reported
	report := func(oc userimport.Outcome) {
		last = oc.Line
		if oc.Result == userimport.Refused || oc.Result == userimport.Skipped || oc.Reason != "" {
			fmt.Fprintf(stdout, "line %d: %s: %s\n", oc.Line, oc.Result, oc.Reason)
		}
	}
	var progress func(userimport.Counts)
	start := time.Now()
	if isTerminal(stderr) {
		progress = func(c userimport.Counts) {
			fmt.Fprintf(stderr, "\r%d lines, %.0f a second ", c.Lines(), float64(c.Lines())/time.Since(start).Seconds())
		}
	}
	c, err := svc.Import(ctx, in, o, report, progress)
	if progress != nil {
		fmt.Fprintln(stderr)
	}
	what := "imported"
	if o.DryRun {
		what = "dry run, nothing written"
	}
	fmt.Fprintf(stdout, "%s: %d lines: %d created, %d updated, %d unchanged, %d skipped, %d refused (%s)\n",
		what, c.Lines(), c.Created, c.Updated, c.Unchanged, c.Skipped, c.Refused, time.Since(start).Round(time.Millisecond))
	if err != nil {
		return fmt.Errorf("%w (the lines reported above are done; --resume %d continues after them)", err, last+1)
	}
	if c.Refused > 0 {
		return fmt.Errorf("%d lines refused", c.Refused)
	}
	return nil
}

// importStatus prints how many live accounts are still on each imported
// hash format, and how many have no password yet.
func importStatus(ctx context.Context, cfg config.Config, stdout, stderr io.Writer) error {
	if err := cfg.NeedServices(true); err != nil {
		return err
	}
	pool, rdb, closeAll, err := connect(ctx, cfg, 1)
	if err != nil {
		return err
	}
	defer closeAll()
	level, _ := config.ParseLogLevel(cfg.LogLevel)
	log := logging.New(stderr, cfg.LogFormat, max(level, slog.LevelWarn))
	_, store, err := app.NewImporter(cfg, log, pool, rdb)
	if err != nil {
		return err
	}
	counts, err := store.LegacyHashes(ctx)
	if err != nil {
		return err
	}
	var total int64
	for _, f := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(stdout, "%-16s %s\n", f, strconv.FormatInt(counts[f], 10))
		if f != "none" {
			total += counts[f]
		}
	}
	fmt.Fprintf(stdout, "%d live accounts on imported password hashes (replaced by argon2id at their next login)\n", total)
	return nil
}

// isTerminal reports whether w is a terminal (for the progress line).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
