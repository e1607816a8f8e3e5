// Command gatehouse is the user and authentication service: it serves the
// API, migrates its database and manages its first administrator.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process at once
	}()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse:", err)
		os.Exit(1)
	}
}

const usage = `usage: gatehouse <command>

commands:
  serve                  serve the API on PORT (default 5500)
  migrate up|down|status apply, roll back (one step) or list database migrations
  create-admin --email E make E an administrator (password read from standard input)
  import users FILE      import accounts (JSON Lines; - for standard input); import users -h lists the flags
  import status          count the accounts still on imported password hashes
  keygen [--out FILE]    write a new Ed25519 signing key (PKCS#8 PEM)
  mfa rekey              re-encrypt TOTP secrets under the first MFA_ENCRYPTION_KEYS key
  version                print the version
  help                   print this help

Configuration comes from the environment and an optional .env file in the
working directory; see .env.example.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	switch args[0] {
	case "serve":
		cfg, err := loadConfig()
		if err != nil {
			return err
		}
		return serve(ctx, cfg, stderr)
	case "migrate":
		cfg, err := loadConfig()
		if err != nil {
			return err
		}
		return migrate(ctx, cfg, args[1:], stdout)
	case "create-admin":
		cfg, err := loadConfig()
		if err != nil {
			return err
		}
		return createAdmin(ctx, cfg, args[1:], stdin, stdout, stderr)
	case "mfa":
		cfg, err := loadConfig()
		if err != nil {
			return err
		}
		return mfa(ctx, cfg, args[1:], stdout, stderr)
	case "import":
		cfg, err := loadConfig()
		if err != nil {
			return err
		}
		return importCmd(ctx, cfg, args[1:], stdin, stdout, stderr)
	case "keygen":
		return keygen(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "gatehouse", version)
		return nil
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
