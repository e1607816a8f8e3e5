package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/joho/godotenv"

	"github.com/gatehouse/gatehouse/internal/config"
)

// loadConfig reads .env (when present) under the process environment, which
// wins, and parses the result.
func loadConfig() (config.Config, error) {
	env := map[string]string{}
	file, err := godotenv.Read(".env")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return config.Config{}, fmt.Errorf("read .env: %w", err)
	}
	for k, v := range file {
		env[k] = v
		// The OpenTelemetry SDK reads its OTEL_* variables from the process
		// environment: those of .env join it (the environment still wins).
		if _, set := os.LookupEnv(k); !set && strings.HasPrefix(k, "OTEL_") {
			if err := os.Setenv(k, v); err != nil {
				return config.Config{}, fmt.Errorf("set %s from .env: %w", k, err)
			}
		}
	}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return config.Parse(env)
}
