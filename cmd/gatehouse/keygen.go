package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/gatehouse/gatehouse/internal/token"
)

// keygen writes a new Ed25519 signing key (PKCS#8 PEM), for
// JWT_SIGNING_KEY_FILES. With --out it writes the file once (mode 0600) and
// leaves an existing one alone, so a deployment can run it on every start.
func keygen(args []string, stdout, stderr io.Writer) error {
	fsFlags := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fsFlags.SetOutput(stderr)
	out := fsFlags.String("out", "", "file to write (default: standard output)")
	if err := fsFlags.Parse(args); err != nil {
		return err
	}
	k, err := token.GenerateKey()
	if err != nil {
		return err
	}
	pemBytes, err := token.MarshalKeyPEM(k)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err := stdout.Write(pemBytes)
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		fmt.Fprintf(stderr, "%s exists; left unchanged\n", *out)
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(pemBytes); err != nil {
		_ = f.Close()
		return err
	}
	fmt.Fprintf(stderr, "wrote %s (kid %s)\n", *out, k.ID)
	return f.Close()
}
