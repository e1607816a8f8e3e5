package config

import (
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestParse_DefaultsServeOnPort5500InDevelopment(t *testing.T) {
	c, err := Parse(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 5500 || c.AppEnv != EnvDevelopment || c.LogFormat != "text" || c.MailDriver != "file" || c.BodyLimitBytes != 1<<20 {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestParse_HashingSlotsDefaultToOnePerCPUAtLowPriority(t *testing.T) {
	c, err := Parse(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if c.HashSlots() != runtime.NumCPU() || !c.HashLowPriority {
		t.Fatalf("defaults: %d slots (want %d), low priority %v", c.HashSlots(), runtime.NumCPU(), c.HashLowPriority)
	}
	c, err = Parse(map[string]string{"PASSWORD_HASH_CONCURRENCY": "3", "PASSWORD_HASH_LOW_PRIORITY": "false"})
	if err != nil {
		t.Fatal(err)
	}
	if c.HashSlots() != 3 || c.HashLowPriority {
		t.Fatalf("set: %d slots (want 3), low priority %v", c.HashSlots(), c.HashLowPriority)
	}
}

func TestParse_RejectsNonsenseWithClearMessages(t *testing.T) {
	_, err := Parse(map[string]string{"APP_ENV": "staging", "PORT": "0", "LOG_LEVEL": "loud", "MAIL_DRIVER": "pigeon", "PUBLIC_URL": "ftp://x"})
	if err == nil {
		t.Fatal("accepted nonsense")
	}
	for _, want := range []string{"APP_ENV", "PORT", "LOG_LEVEL", "MAIL_DRIVER", "PUBLIC_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
	if _, err := Parse(map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8,nope"}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("bad TRUSTED_PROXIES accepted or unnamed: %v", err)
	}
}

func TestParse_TrustedProxiesTakeCIDRsAndAddresses(t *testing.T) {
	c, err := Parse(map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7,::1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.TrustedProxies) != 3 || c.TrustedProxies[1].String() != "192.168.1.7/32" || c.TrustedProxies[2].String() != "::1/128" {
		t.Fatalf("got %v", c.TrustedProxies)
	}
}

func TestParse_ProductionRefusesUnsafeSettings(t *testing.T) {
	_, err := Parse(map[string]string{
		"APP_ENV": "production", "LOG_LEVEL": "DEBUG", "SMTP_TLS": "none",
		"TRUSTED_PROXIES": "0.0.0.0/0", "CORS_ALLOWED_ORIGINS": "*",
	})
	if err == nil {
		t.Fatal("production accepted unsafe settings")
	}
	for _, want := range []string{"DATABASE_URL", "REDIS_URL", "JWT_SIGNING_KEY_FILES", "LOG_LEVEL=debug", "MAIL_DRIVER", "PUBLIC_URL", "SMTP_TLS=none", "TRUSTED_PROXIES=0.0.0.0/0", "CORS_ALLOWED_ORIGINS=*", "SERVER_SECRET", "MFA_ENCRYPTION_KEYS", "METRICS_ADDR or METRICS_TOKEN"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("production error does not name %s: %v", want, err)
		}
	}
	c, err := Parse(map[string]string{ //nolint:gosec // G101: test values
		"APP_ENV": "production", "DATABASE_URL": "postgres://db/gatehouse", "REDIS_URL": "redis://cache:6379/0",
		"JWT_SIGNING_KEY_FILES": "/run/secrets/k1.pem", "MAIL_DRIVER": "smtp", "SMTP_HOST": "smtp.example.com",
		"PUBLIC_URL": "https://auth.example.com", "SERVER_SECRET": "0123456789abcdef0123456789abcdef",
		"METRICS_TOKEN": "a metrics token of 32 characters", "MFA_ENCRYPTION_KEYS": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	})
	if err != nil {
		t.Fatalf("safe production settings refused: %v", err)
	}
	if c.LogFormat != "json" {
		t.Errorf("production logs default to %q, want json", c.LogFormat)
	}
}

// TestEnvExample_ListsEveryVariable keeps .env.example complete.
func TestEnvExample_ListsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeOf(Config{})
	for i := range typ.NumField() {
		name := strings.Split(typ.Field(i).Tag.Get("env"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		if !strings.Contains(string(b), "\n"+name+"=") {
			t.Errorf(".env.example lacks %s", name)
		}
	}
	if !strings.Contains(string(b), "\nPORT=5500\n") {
		t.Error(".env.example must say PORT=5500")
	}
}

func TestParse_MetricsAndTracingSettings(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		want string // in the error; "" when accepted
	}{
		{"defaults", nil, ""},
		{"a separate listener", map[string]string{"METRICS_ADDR": ":9090"}, ""},
		{"a listener without a port", map[string]string{"METRICS_ADDR": "127.0.0.1"}, "METRICS_ADDR"},
		{"a short token", map[string]string{"METRICS_TOKEN": "short"}, "METRICS_TOKEN"},
		{"OTLP over HTTP", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, ""},
		{"OTLP over gRPC", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.env)
			if c.want == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("error %v does not name %s", err, c.want)
			}
		})
	}
	for env, want := range map[string]bool{
		"":                                   false,
		"OTEL_EXPORTER_OTLP_ENDPOINT":        true,
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": true,
	} {
		m := map[string]string{}
		if env != "" {
			m[env] = "http://collector:4318"
		}
		c, err := Parse(m)
		if err != nil {
			t.Fatal(err)
		}
		if c.TracingEnabled() != want {
			t.Errorf("with %q set, tracing enabled = %v", env, c.TracingEnabled())
		}
		m["OTEL_SDK_DISABLED"] = "true"
		if c, _ := Parse(m); c.TracingEnabled() {
			t.Errorf("OTEL_SDK_DISABLED=true leaves tracing on (%q)", env)
		}
	}
}

func TestParse_DatabasePoolerAndTheDirectURL(t *testing.T) {
	c, err := Parse(map[string]string{"DATABASE_URL": "postgres://pgbouncer:6432/gatehouse"})
	if err != nil {
		t.Fatal(err)
	}
	if c.BehindTransactionPooler() || c.DirectURL() != "postgres://pgbouncer:6432/gatehouse" {
		t.Fatalf("defaults: pooler %q, direct URL %q", c.DatabasePooler, c.DirectURL())
	}
	c, err = Parse(map[string]string{
		"DATABASE_URL":        "postgres://pgbouncer:6432/gatehouse",
		"DATABASE_POOLER":     "transaction",
		"DATABASE_DIRECT_URL": "postgres://db:5432/gatehouse",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !c.BehindTransactionPooler() || c.DirectURL() != "postgres://db:5432/gatehouse" {
		t.Fatalf("pooler %q, direct URL %q", c.DatabasePooler, c.DirectURL())
	}
	if _, err := Parse(map[string]string{"DATABASE_POOLER": "statement"}); err == nil || !strings.Contains(err.Error(), "DATABASE_POOLER must be none or transaction") {
		t.Fatalf("DATABASE_POOLER=statement: %v", err)
	}
}
