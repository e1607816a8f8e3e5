#!/usr/bin/env bash
# check-imports.sh: fail when a layer depends on what it must not, directly or
# through any chain of imports (golangci-lint's depguard sees direct imports only).
#
#   domain (internal/auth, internal/user, internal/account, internal/userimport and their subpackages)
#       must not depend on internal/pgstore, internal/redisstore, internal/httpapi, gen/db,
#       Prometheus or the OpenTelemetry SDK
#   internal/httpapi
#       must not depend on internal/pgstore, internal/redisstore, gen/db, Prometheus or
#       the OpenTelemetry SDK (the API, go.opentelemetry.io/otel/trace, is fine)
#
# Only the packages' own (non-test) dependencies count: tests may reach the
# stores through the internal/apitest harness.
set -euo pipefail

mod=github.com/gatehouse/gatehouse
domain_re="^$mod/internal/(auth|user|account|userimport)(/|\$)"
httpapi_re="^$mod/internal/httpapi(/|\$)"
stores_re="^$mod/(internal/pgstore|internal/redisstore|gen/db)(/|\$)"
http_re="^$mod/internal/httpapi(/|\$)"
# Metrics and traces are reported through interfaces (auth.Observer,
# httpapi.Metrics) that internal/telemetry implements.
prom_re="^github.com/prometheus/"
otelsdk_re="^go.opentelemetry.io/otel/(sdk|exporters)(/|\$)"

# A failing go list (a build error, an import cycle) must fail the check, so
# its output is collected before it is read.
listing=$(go list -deps -f '{{.ImportPath}}|{{join .Imports " "}}|{{join .Deps " "}}' ./...)
declare -A imports deps
pkgs=()
while IFS='|' read -r pkg imps dps; do
	pkgs+=("$pkg")
	imports[$pkg]=$imps
	deps[$pkg]=$dps
done <<<"$listing"

# why PKG BAD: the first direct import of PKG through which BAD is reached.
why() {
	local imp
	for imp in ${imports[$1]}; do
		if [[ $imp == "$2" || " ${deps[$imp]:-} " == *" $2 "* ]]; then
			echo "$imp"
			return
		fi
	done
}

fail=0
for pkg in "${pkgs[@]}"; do
	if [[ $pkg =~ $domain_re ]]; then
		forbidden="$stores_re|$http_re|$prom_re|$otelsdk_re"
	elif [[ $pkg =~ $httpapi_re ]]; then
		forbidden="$stores_re|$prom_re|$otelsdk_re"
	else
		continue
	fi
	for dep in ${deps[$pkg]}; do
		if [[ $dep =~ $forbidden ]]; then
			echo "FORBIDDEN IMPORT: $pkg depends on $dep (via $(why "$pkg" "$dep"))" >&2
			fail=1
		fi
	done
done
if ((fail)); then
	echo "check-imports: layering broken; see ARCHITECTURE.md ("Import rules") and the depguard rules in .golangci.yml" >&2
	exit 1
fi
echo "check-imports: domain and httpapi packages reach no store, gen/db, Prometheus or OpenTelemetry SDK package"
