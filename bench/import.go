package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// importUsers measures `gatehouse import users` on n generated lines
// (Werkzeug scrypt hashes, as the Flask service stores them; one in a
// hundred without a password), streamed through standard input into a
// database of its own: the time and the importer's peak RSS, then the same
// lines again (every one unchanged). The hashes are only parsed at import,
// never computed, so one string serves every line.
func (b *bench) importUsers(ctx context.Context, bin, base string, n int) error {
	dbURL, err := freshDatabase(ctx, base, "gatehouse_bench_import")
	if err != nil {
		return err
	}
	if err := migrate(ctx, dbURL); err != nil {
		return err
	}
	for _, pass := range []string{"first import", "same lines again"} {
		took, rssKiB, summary, err := b.runImport(bin, dbURL, n)
		if err != nil {
			return fmt.Errorf("%s: %w", pass, err)
		}
		mib := float64(rssKiB) / 1024
		rate := float64(n) / took.Seconds()
		b.goal(goal{
			Name:   fmt.Sprintf("import %d users, %s: peak RSS", n, pass),
			Figure: fmt.Sprintf("%s, %.0f lines/s: %s", took.Round(100*time.Millisecond), rate, summary),
			Ratio:  &mib, RatioText: fmt.Sprintf("%.0f MiB", mib), Goal: "< 150 MiB", Status: status(mib < 150),
		})
	}
	return nil
}

// runImport runs one import of n generated lines and returns its wall
// time, the importer's peak RSS (KiB) and its summary line.
func (b *bench) runImport(bin, dbURL string, n int) (time.Duration, int64, string, error) {
	cmd := exec.Command(bin, "import", "users", "-")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "LOG_LEVEL=error")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, 0, "", err
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, b.serverLog
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, "", err
	}
	werr := writeImportLines(stdin, n)
	_ = stdin.Close()
	err = cmd.Wait()
	took := time.Since(start)
	if werr != nil || err != nil {
		return 0, 0, "", fmt.Errorf("import: %w %w\n%s", werr, err, out.String())
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss // KiB on Linux
	}
	summary := strings.TrimSpace(out.String())
	if i := strings.LastIndex(summary, "\n"); i >= 0 {
		summary = summary[i+1:]
	}
	return took, rss, summary, nil
}

// benchHash is Werkzeug's default scrypt of "correct horse battery staple".
const benchHash = "scrypt:32768:8:1$mXV872Kf1muRuAZT$8a91c37704aef8705201890ec9c7d0ed6b177814db4bbc0f26bc79e18bbcf20c2d4fd8f3d2c7d577b45ee91bb8f5644528f3fe1df3f121f95ff527f7dbe69f59"

func writeImportLines(w io.Writer, n int) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	for i := 1; i <= n; i++ {
		hash := `,"password_hash":"` + benchHash + `"`
		if i%100 == 0 {
			hash = ""
		}
		line := `{"external_id":` + strconv.Itoa(i) + `,"email":"imported-` + strconv.Itoa(i) + `@example.com","name":"User ` + strconv.Itoa(i) +
			`","email_verified":` + strconv.FormatBool(i%3 != 0) + `,"roles":["user"],"created_at":"2019-05-01T10:00:00Z"` + hash + "}\n"
		if _, err := bw.WriteString(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}
