package app_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
)

// TestApp_MailsACommandRecordsAreSentByAServingInstance: a command's
// service (NewAccounts) only inserts jobs; a serving instance (New + Start)
// works them. Registration through the command's service mails the
// verification link once the instance runs.
func TestApp_MailsACommandRecordsAreSentByAServingInstance(t *testing.T) {
	t.Parallel()
	dbURL, rd := apitest.DatabaseURL(t), apitest.StartRedis(t)
	env := apitest.TestEnv(dbURL, rd.URL())
	env["MAIL_DIR"] = t.TempDir()
	cfg, err := config.Parse(env)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	pool := apitest.Pool(t, dbURL)

	cmd, err := app.NewAccounts(cfg, log, pool, rd.Client())
	if err != nil {
		t.Fatal(err)
	}
	email := apitest.NewEmail("app")
	if err := cmd.Register(t.Context(), email, apitest.Password, nil, account.Client{}); err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(cfg.MailDir, "*.eml")); len(files) != 0 {
		t.Fatalf("a command sent %d mails itself", len(files))
	}

	a, err := app.New(cfg, log, pool, rd.Client(), app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		files, err := filepath.Glob(filepath.Join(cfg.MailDir, "*.eml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 1 {
			b, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte("verify-email?token=")) {
				t.Fatalf("the mail sent: %s", b)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mails sent, want the verification", len(files))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
