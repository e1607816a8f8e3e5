package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apitest"
)

// The TypeScript client (clients/typescript) and Swagger UI are tested the
// way their users meet them: Node runs the client's tests and a headless
// Chromium opens /docs/, both against a real `gatehouse serve`.

// TestTypeScriptClient_FlowAgainstARealServer runs clients/typescript/test
// (register, verify from the mail, login, me, refresh, sessions, password
// change, logout; refresh-and-retry; administration) with every response
// checked against the contract by an independent validator (Ajv).
func TestTypeScriptClient_FlowAgainstARealServer(t *testing.T) {
	t.Parallel()
	node := nodeOrSkip(t)
	mailDir := t.TempDir()
	in := startCluster(t, 1, "MAIL_DIR="+mailDir)[0]
	env := append(adminEnv(t, in), "GATEHOUSE_URL="+in.url, "GATEHOUSE_MAIL_DIR="+mailDir)
	runNodeTests(t, node, env, "test/contract.test.js", "test/flow.test.js")
}

// TestSwaggerUI_TryItOutInABrowser opens /docs/ from 127.0.0.1 in Debian's
// Chromium (driven by playwright-core), logs in with "Try it out", authorizes,
// calls GET /users/me, and checks the operations' order and permissions.
func TestSwaggerUI_TryItOutInABrowser(t *testing.T) {
	t.Parallel()
	node := nodeOrSkip(t)
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		p, err := exec.LookPath("chromium")
		if err != nil && os.Getenv("CI") != "" {
			t.Fatal("chromium not found: CI must run the browser test (`make test` installs Debian's chromium as root)")
		}
		if err != nil {
			t.Skip("chromium not found: `make test` installs it (Debian package chromium) and sets CHROMIUM")
		}
		chromium = p
	}
	port := freePort(t)
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	// Try it out calls the first server of the contract, PUBLIC_URL here.
	in := startCluster(t, 1, "PORT="+strconv.Itoa(port), "PUBLIC_URL="+url)[0]
	env := append(adminEnv(t, in), "GATEHOUSE_URL="+in.url, "GATEHOUSE_MAIL_DIR="+t.TempDir(), "CHROMIUM="+chromium)
	runNodeTests(t, node, env, "test/swagger-ui.test.js")
}

func nodeOrSkip(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found: the TypeScript client and Swagger UI tests need Node 20")
	}
	if _, err := os.Stat(filepath.Join(repoRoot(t), "node_modules", "openapi-fetch")); err != nil {
		t.Fatal("node_modules is missing or stale: run `npm ci` (make test does)")
	}
	return node
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// adminEnv makes an administrator with `gatehouse create-admin`, as an
// operator would, and returns its credentials for the Node tests.
func adminEnv(t *testing.T, in *instance) []string {
	t.Helper()
	email := apitest.NewEmail("admin")
	var env []string
	for k, v := range in.env {
		env = append(env, k+"="+v)
	}
	cmd := exec.Command(binary, "create-admin", "--email", email)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.Dir = t.TempDir()
	cmd.Stdin = strings.NewReader(apitest.Password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("create-admin: %v\n%s", err, out)
	}
	return []string{"GATEHOUSE_ADMIN_EMAIL=" + email, "GATEHOUSE_ADMIN_PASSWORD=" + apitest.Password}
}

// runNodeTests compiles clients/typescript (so a type error fails too) into
// a folder of its own and runs the given compiled test files with `node --test`.
func runNodeTests(t *testing.T, node string, env []string, files ...string) {
	t.Helper()
	root := repoRoot(t)
	pkg := filepath.Join(root, "clients", "typescript")
	// Inside the package, so the compiled files find node_modules and its
	// package.json ("type": "module").
	out, err := os.MkdirTemp(pkg, ".build-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(out) })
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	tsc := exec.CommandContext(ctx, node, filepath.Join(root, "node_modules", "typescript", "bin", "tsc"), "-p", pkg, "--outDir", out)
	if b, err := tsc.CombinedOutput(); err != nil {
		t.Fatalf("tsc: %v\n%s", err, b)
	}
	args := []string{"--test", "--test-reporter=spec", "--enable-source-maps"}
	for _, f := range files {
		args = append(args, filepath.Join(out, f))
	}
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GATEHOUSE_SPEC="+filepath.Join(root, "api", "openapi.yaml"))
	cmd.Env = append(cmd.Env, env...)
	b, err := cmd.CombinedOutput()
	t.Logf("node --test %s:\n%s", strings.Join(files, " "), b)
	if err != nil {
		t.Fatalf("node --test: %v", err)
	}
}
