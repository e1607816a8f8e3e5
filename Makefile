# gatehouse: `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO      ?= go
TOOL    := $(GO) tool -modfile=tools/go.mod
DEV     := scripts/devservices.sh
BIN     := bin/gatehouse
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: build ## serve on :5500 (starts a private PostgreSQL and Redis under .dev/ unless DATABASE_URL and REDIS_URL are set)
	$(DEV) exec -- bash -c '$(BIN) migrate up && exec $(BIN) serve'

# INSTANCES: how many instances `make cluster` starts.
INSTANCES ?= 3

.PHONY: cluster
cluster: build ## serve on :5500 through nginx in front of INSTANCES instances (default 3; instead of make run), with the private PostgreSQL and Redis unless DATABASE_URL and REDIS_URL are set
	INSTANCES=$(INSTANCES) $(DEV) exec -- scripts/cluster.sh up

.PHONY: cluster-restart
cluster-restart: build ## replace the instances of make cluster one by one (rolling restart) with the freshly built binary
	$(DEV) exec -- scripts/cluster.sh restart

.PHONY: cluster-down
cluster-down: ## stop what make cluster started (nginx and the instances, by their recorded PIDs)
	scripts/cluster.sh down

.PHONY: test
test: node_modules ## run the whole test suite with the race detector on real PostgreSQL and Redis (nginx in front of several instances, the TypeScript client and Swagger UI in Node and Chromium)
	REDIS_SERVER="$$($(DEV) redis-server-path)" CHROMIUM="$$($(DEV) chromium-path)" PROMTOOL="$$($(DEV) promtool-path)" NGINX_BIN="$$($(DEV) nginx-path)" PGBOUNCER="$$($(DEV) pgbouncer-path)" $(DEV) exec -- $(GO) test -race -count=1 -p 4 -timeout 30m ./...

.PHONY: test-pgbouncer
# test-pgbouncer runs a representative part of the HTTP suite through PgBouncer: every test of
# the account, user-administration, email, health and PgBouncer files (the flows that write,
# mail and read back), and auth's flows, concurrency and outage tests. The rest of the suite
# (contract walks, request validation, metrics, tracing) takes the same database paths;
# TEST_PGBOUNCER=1 go test ./internal/httpapi/ runs all of it through PgBouncer, in about
# 14 minutes on the loaded 2-core development machine: too long for every CI run.
PGB_FILES := account users email health pgbouncer
PGB_AUTH  := TestAuthFlow_RegisterLoginRefreshReuseLogout|TestRefresh_ConcurrentUseOfOneTokenKeepsOneSession|TestRefresh_ConcurrentWithoutGraceExactlyOneWins|TestRegister_ConcurrentCaseVariantsCreateOneAccount|TestRevocation_RedisDownUsesPostgres_BothDownFailsClosed|TestRevocation_SurvivesRedisFlushAndRestart|TestLockout_ParallelGuessesAreAllCounted|TestRefresh_SessionBehindTheUsersTokenVersionIsDead
PGB_TESTS  = $(shell sed -n 's/^func \(Test[A-Za-z0-9_]*\)(t \*testing.T).*/\1/p' $(PGB_FILES:%=internal/httpapi/%_test.go) | paste -sd'|')|$(PGB_AUTH)

.PHONY: test-pgbouncer
test-pgbouncer: ## run a representative part of the HTTP test suite with each test server's DATABASE_URL through a real PgBouncer in transaction mode (DATABASE_DIRECT_URL direct)
	TEST_PGBOUNCER=1 REDIS_SERVER="$$($(DEV) redis-server-path)" PGBOUNCER="$$($(DEV) pgbouncer-path)" $(DEV) exec -- $(GO) test -race -count=1 -timeout 15m -run '^($(PGB_TESTS))$$' ./internal/httpapi/

# BENCH_FLAGS: e.g. BENCH_FLAGS='-duration 3s -users 100000' for a quicker, rougher run;
# BENCH_FLAGS='-only import' measures only the import of -users accounts.
BENCH_FLAGS ?=

.PHONY: bench
bench: ## measure the performance goals (ratios measured in one run) and print each next to its goal; writes bench/results/TIME.json and TIME.svg
	$(DEV) exec -- $(GO) run ./bench $(BENCH_FLAGS)

.PHONY: bench-compare
bench-compare: ## draw two bench runs side by side: make bench-compare A=bench/results/X.json B=bench/results/Y.json (writes X_vs_Y.svg beside B)
	$(GO) run ./bench -compare $(A) $(B)

.PHONY: build
build: ## build bin/gatehouse
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/gatehouse

.PHONY: generate
generate: node_modules ## regenerate gen/ and the TypeScript client's types from api/openapi.yaml, db/migrations and db/queries
	$(TOOL) oapi-codegen -config oapi-codegen.yaml api/openapi.yaml
	$(TOOL) oapi-codegen -config oapi-codegen.client.yaml api/openapi.yaml
	rm -f gen/db/*.sql.go # a query file removed leaves no stale code behind
	$(TOOL) sqlc generate
	$(TS_TYPES) -o clients/typescript/src/schema.d.ts

.PHONY: check
check: check-generated lint check-imports lint-spec check-breaking check-rules ## everything CI checks before the tests

.PHONY: check-rules
check-rules: ## check the example Prometheus alert rules (deploy/prometheus/alerts.yml) with promtool
	"$$($(DEV) promtool-path)" check rules deploy/prometheus/alerts.yml

.PHONY: check-breaking
check-breaking: ## fail on breaking changes of api/openapi.yaml since the released contract api/released/v1.yaml (oasdiff, and the permissions it cannot read)
	$(TOOL) oasdiff breaking api/released/v1.yaml api/openapi.yaml --fail-on ERR --deprecation-days-stable 180 --color never \
		--severity-levels api/oasdiff-levels.txt
	$(GO) test -count=1 -run '^TestSpec_NoOperationNeedsMoreThanItsRelease$$' ./internal/httpapi/

# openapi-typescript: a property with a default stays optional in requests.
TS_TYPES := npx --no-install openapi-typescript api/openapi.yaml --default-non-nullable false

.PHONY: check-generated
check-generated: node_modules ## fail when gen/ or the TypeScript client's types differ from what their sources produce
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	sed 's|^output: .*|output: '$$tmp'/api.gen.go|' oapi-codegen.yaml > $$tmp/server.yaml && \
	sed 's|^output: .*|output: '$$tmp'/client.gen.go|' oapi-codegen.client.yaml > $$tmp/client.yaml && \
	$(TOOL) oapi-codegen -config $$tmp/server.yaml api/openapi.yaml && \
	$(TOOL) oapi-codegen -config $$tmp/client.yaml api/openapi.yaml && \
	cmp -s gen/api/api.gen.go $$tmp/api.gen.go && \
	cmp -s gen/client/client.gen.go $$tmp/client.gen.go && \
	$(TS_TYPES) -o $$tmp/schema.d.ts >/dev/null 2>&1 && \
	cmp -s clients/typescript/src/schema.d.ts $$tmp/schema.d.ts && \
	$(TOOL) sqlc diff && \
	[ "$$(cd db/queries && ls *.sql)" = "$$(cd gen/db && ls *.sql.go | sed 's/\.go$$//')" ] && \
	echo "gen/ and clients/typescript/src/schema.d.ts are up to date" || { echo "generated code is stale: run 'make generate' and commit the result"; exit 1; }

.PHONY: lint
lint: node_modules ## go vet and golangci-lint on the hand-written code; tsc on the TypeScript client and its tests
	$(GO) vet ./...
	$(TOOL) golangci-lint run ./...
	npx --no-install tsc -p clients/typescript --noEmit

.PHONY: check-imports
check-imports: ## fail when internal/auth, internal/user, internal/account or internal/httpapi depend, even transitively, on a store, gen/db or (domain) httpapi
	scripts/check-imports.sh

.PHONY: vuln
vuln: ## report known vulnerabilities reachable from the code (govulncheck; needs vuln.go.dev, so check does not run it)
	$(TOOL) govulncheck ./...

.PHONY: lint-spec
lint-spec: node_modules ## lint api/openapi.yaml with Redocly, and with Spectral's OpenAPI and OWASP API Security rules
	npx --no-install redocly lint --format=stylish api/openapi.yaml
	npx --no-install spectral lint --ruleset .spectral.yaml --fail-severity warn api/openapi.yaml

node_modules: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch node_modules

.PHONY: migrate
migrate: build ## apply pending migrations to DATABASE_URL (or the private PostgreSQL)
	$(DEV) exec -- $(BIN) migrate up

.PHONY: dev-up
dev-up: ## start the private PostgreSQL and Redis under .dev/
	$(DEV) up
	@$(DEV) env

.PHONY: dev-down
dev-down: ## stop the private PostgreSQL and Redis (data kept)
	$(DEV) down

.PHONY: dev-clean
dev-clean: ## stop them and delete their data
	$(DEV) clean

.PHONY: dev-status
dev-status: ## show whether the private services run
	$(DEV) status

.PHONY: clean
clean: ## remove build output
	rm -rf bin
