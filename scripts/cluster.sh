#!/usr/bin/env bash
# cluster.sh - several gatehouse instances behind nginx, as real processes.
#
# Usage: scripts/cluster.sh <command>
#
# Commands (up, restart and down need DATABASE_URL and REDIS_URL, as
# `scripts/devservices.sh exec -- scripts/cluster.sh up` sets them):
#   up             Run the migrations once, make the shared signing key (once),
#                  start INSTANCES instances of GATEHOUSE_BIN on free loopback
#                  ports and nginx on 127.0.0.1:CLUSTER_PORT in front of them.
#                  Fails if a cluster of this state dir already runs.
#   down           Stop exactly what `up` started (the PIDs it recorded):
#                  nginx, then each instance with SIGTERM (they drain).
#   restart        Rolling restart: replace the instances one by one (SIGTERM,
#                  wait for the exit, start the binary again on the same port,
#                  wait until nginx sends to it again) while nginx serves.
#   status         One line per process: running/stopped, port, pid.
#   nginx-config   Print the nginx configuration of deploy/nginx.conf for the
#                  addresses given as environment: NGINX_LISTEN (host:port),
#                  NGINX_UPSTREAMS (space-separated host:port), NGINX_STATE
#                  (directory for its pid, logs and temp files), NGINX_BIND
#                  (address nginx connects to the instances from; optional).
#   help           Show this text.
#
# Environment: INSTANCES (default 3), CLUSTER_PORT (default 5500),
# CLUSTER_STATE (default <repo>/.dev/cluster), GATEHOUSE_BIN (default
# <repo>/bin/gatehouse), CLUSTER_PROXY_BIND (default 127.0.0.2: nginx connects
# from there and the instances trust only it in TRUSTED_PROXIES, so a local
# client on 127.0.0.1 cannot choose its address), CLUSTER_RESTART_PAUSE
# (seconds to wait after a replaced instance is ready, default 6: nginx's
# fail_timeout of 5s plus one). Other settings reach the instances as they are
# (the environment, or .env in the repository).
#
# State dir: signing.pem, nginx.conf, gatehouse.conf (rendered),
# nginx.pid, nginx.log, access.log, instance-N.{pid,port,log}.
set -euo pipefail

PROG=scripts/cluster.sh
SCRIPT_PATH=${BASH_SOURCE[0]}
REPO=$(cd -- "$(dirname -- "$SCRIPT_PATH")/.." && pwd -P)
INSTANCES=${INSTANCES:-3}
CLUSTER_PORT=${CLUSTER_PORT:-5500}
STATE=${CLUSTER_STATE:-$REPO/.dev/cluster}
BIN=${GATEHOUSE_BIN:-$REPO/bin/gatehouse}
PROXY_BIND=${CLUSTER_PROXY_BIND-127.0.0.2}
RESTART_PAUSE=${CLUSTER_RESTART_PAUSE:-6}

say() { printf 'cluster: %s\n' "$*" >&2; }
die() {
	printf 'cluster: error: %s\n' "$*" >&2
	exit 1
}
usage() {
	awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$SCRIPT_PATH"
}

# ------------------------------------------------------------ processes ---

read_pid() { # file -> pid
	local pid=
	[[ -r $1 ]] || return 1
	read -r pid <"$1" 2>/dev/null || true
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	printf '%s\n' "$pid"
}
# 0 if the pid in file is alive, not a zombie, and runs a command named $2:
# a recycled pid of some other program is never signalled.
ours() { # pidfile comm
	local pid comm stat
	pid=$(read_pid "$1") || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	stat=$(cat "/proc/$pid/stat" 2>/dev/null) || stat=
	[[ -z $stat || ${stat##*) } != Z* ]] || return 1
	comm=$(cat "/proc/$pid/comm" 2>/dev/null || ps -o comm= -p "$pid" 2>/dev/null || true)
	[[ $comm == "$2"* ]]
}
wait_gone() { # pidfile comm seconds
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		ours "$1" "$2" || return 0
		sleep 0.1
	done
	return 1
}

port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
pick_port() {
	local p i
	for ((i = 0; i < 500; i++)); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
		port_in_use "$p" || {
			printf '%s\n' "$p"
			return 0
		}
	done
	die "could not find a free TCP port on 127.0.0.1"
}

# ---------------------------------------------------------------- nginx ---

# render_server: deploy/nginx.conf with the upstream servers and the listen
# address replaced; every other line (and each server's parameters) kept.
render_server() { # listen "upstream..."
	awk -v listen="$1" -v ups="$2" '
		/^[[:space:]]*upstream[[:space:]]+gatehouse[[:space:]]*\{/ { inup = 1; print; next }
		inup && /^[[:space:]]*server[[:space:]]/ {
			if (!done) {
				params = $0
				sub(/^[[:space:]]*server[[:space:]]+[^[:space:];]+/, "", params)
				n = split(ups, a, " ")
				for (i = 1; i <= n; i++) printf "    server %s%s\n", a[i], params
				done = 1
			}
			next
		}
		inup && /\}/ { inup = 0 }
		/^[[:space:]]*listen[[:space:]]/ { sub(/listen[[:space:]]+[^;]+;/, "listen " listen ";"); print; next }
		{ print }
	' "$REPO/deploy/nginx.conf"
}

cmd_nginx_config() {
	: "${NGINX_LISTEN:?set NGINX_LISTEN}" "${NGINX_UPSTREAMS:?set NGINX_UPSTREAMS}" "${NGINX_STATE:?set NGINX_STATE}"
	mkdir -p -- "$NGINX_STATE/tmp"
	render_server "$NGINX_LISTEN" "$NGINX_UPSTREAMS" >"$NGINX_STATE/gatehouse.conf"
	cat <<EOF
# Rendered by $PROG from deploy/nginx.conf (included below).
worker_processes 1;
pid $NGINX_STATE/nginx.pid;
error_log $NGINX_STATE/nginx.log warn;
events { worker_connections 1024; }
http {
    log_format upstreams '\$remote_addr "\$request" \$status upstream=\$upstream_addr upstream_status=\$upstream_status';
    access_log $NGINX_STATE/access.log upstreams;
    client_body_temp_path $NGINX_STATE/tmp/body;
    proxy_temp_path $NGINX_STATE/tmp/proxy;
    fastcgi_temp_path $NGINX_STATE/tmp/fastcgi;
    uwsgi_temp_path $NGINX_STATE/tmp/uwsgi;
    scgi_temp_path $NGINX_STATE/tmp/scgi;
${NGINX_BIND:+    proxy_bind $NGINX_BIND;
}    include $NGINX_STATE/gatehouse.conf;
}
EOF
}

nginx_bin() {
	"$REPO/scripts/devservices.sh" nginx-path
}

# run_nginx: nginx without NGINX in its environment, which it would take for
# listening sockets handed over by the nginx it replaces (and not daemonize).
run_nginx() {
	env -u NGINX "$@"
}

# ------------------------------------------------------------ instances ---

need_services() {
	[[ -n ${DATABASE_URL:-} && -n ${REDIS_URL:-} ]] ||
		die "DATABASE_URL and REDIS_URL must be set: run it as 'scripts/devservices.sh exec -- $PROG $1' (make cluster does)"
	[[ -x $BIN ]] || die "$BIN not found: run 'make build'"
}

wait_ready() { # port pidfile log
	local deadline=$((SECONDS + 30))
	while ((SECONDS < deadline)); do
		curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/health/ready" 2>/dev/null && return 0
		ours "$2" gatehouse || {
			tail -n 20 -- "$3" >&2 || true
			die "the instance on port $1 exited"
		}
		sleep 0.1
	done
	tail -n 20 -- "$3" >&2 || true
	die "the instance on port $1 is not ready after 30s"
}

start_instance() { # n port
	local n=$1 port=$2 log=$STATE/instance-$1.log
	say "instance $n: starting on 127.0.0.1:$port"
	# setsid: the instance outlives this script and a Ctrl-C of make.
	(
		cd -- "$REPO"
		PORT=$port JWT_SIGNING_KEY_FILES=$STATE/signing.pem \
			TRUSTED_PROXIES=${PROXY_BIND:-127.0.0.1}/32 \
			exec setsid "$BIN" serve </dev/null >>"$log" 2>&1
	) &
	printf '%s\n' "$!" >"$STATE/instance-$n.pid"
	printf '%s\n' "$port" >"$STATE/instance-$n.port"
	wait_ready "$port" "$STATE/instance-$n.pid" "$log"
}

stop_instance() { # n
	local f=$STATE/instance-$1.pid pid
	if ours "$f" gatehouse; then
		pid=$(read_pid "$f")
		say "instance $1: SIGTERM (pid $pid), draining"
		kill -TERM "$pid"
		# SHUTDOWN_TIMEOUT (20s by default) bounds the drain.
		wait_gone "$f" gatehouse 40 || {
			say "instance $1: still running after 40s, SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			wait_gone "$f" gatehouse 5 || true
		}
	fi
	rm -f -- "$f"
}

instance_numbers() {
	local f
	for f in "$STATE"/instance-*.port; do
		[[ -e $f ]] || continue
		f=${f##*/instance-}
		printf '%s\n' "${f%.port}"
	done | sort -n
}

cmd_up() {
	need_services up
	[[ $INSTANCES =~ ^[1-9][0-9]*$ ]] || die "INSTANCES must be a positive number"
	mkdir -p -- "$STATE"
	if ours "$STATE/nginx.pid" nginx || [[ -n $(for n in $(instance_numbers); do ours "$STATE/instance-$n.pid" gatehouse && echo "$n"; done) ]]; then
		die "a cluster already runs from $STATE: '$PROG down' first"
	fi
	port_in_use "$CLUSTER_PORT" && die "port $CLUSTER_PORT is taken (make run?): stop that first, or set CLUSTER_PORT"
	rm -f -- "$STATE"/instance-*
	local nginx ups=() n port
	nginx=$(nginx_bin)
	# Once, before any instance: instances never migrate by themselves.
	(cd -- "$REPO" && "$BIN" migrate up) >&2
	[[ -s $STATE/signing.pem ]] || "$BIN" keygen --out "$STATE/signing.pem" >&2
	for ((n = 1; n <= INSTANCES; n++)); do
		port=$(pick_port)
		start_instance "$n" "$port"
		ups+=("127.0.0.1:$port")
	done
	NGINX_LISTEN=127.0.0.1:$CLUSTER_PORT NGINX_UPSTREAMS="${ups[*]}" NGINX_STATE=$STATE NGINX_BIND=$PROXY_BIND \
		cmd_nginx_config >"$STATE/nginx.conf"
	run_nginx "$nginx" -p "$STATE" -e "$STATE/nginx.log" -c "$STATE/nginx.conf" -t -q || die "nginx refused $STATE/nginx.conf"
	run_nginx "$nginx" -p "$STATE" -e "$STATE/nginx.log" -c "$STATE/nginx.conf" || die "nginx did not start (see $STATE/nginx.log)"
	say "nginx on http://127.0.0.1:$CLUSTER_PORT in front of ${ups[*]} (logs in $STATE)"
}

cmd_down() {
	local pid n
	if ours "$STATE/nginx.pid" nginx; then
		pid=$(read_pid "$STATE/nginx.pid")
		say "nginx: stopping (pid $pid)"
		kill -QUIT "$pid" # graceful: open requests finish
		wait_gone "$STATE/nginx.pid" nginx 15 || kill -TERM "$pid" 2>/dev/null || true
	fi
	for n in $(instance_numbers); do
		stop_instance "$n" &
	done
	wait
	rm -f -- "$STATE"/instance-*.port
}

cmd_restart() {
	need_services restart
	local n port first=1
	ours "$STATE/nginx.pid" nginx || die "no cluster runs from $STATE: '$PROG up' first"
	for n in $(instance_numbers); do
		[[ $first -eq 1 ]] || sleep "$RESTART_PAUSE" # nginx sends to the previous one again
		first=0
		port=$(cat "$STATE/instance-$n.port")
		stop_instance "$n"
		start_instance "$n" "$port"
	done
}

cmd_status() {
	local n port
	if ours "$STATE/nginx.pid" nginx; then
		echo "nginx: running on 127.0.0.1:$CLUSTER_PORT (pid $(read_pid "$STATE/nginx.pid"))"
	else
		echo "nginx: stopped"
	fi
	for n in $(instance_numbers); do
		port=$(cat "$STATE/instance-$n.port")
		if ours "$STATE/instance-$n.pid" gatehouse; then
			echo "instance $n: running on 127.0.0.1:$port (pid $(read_pid "$STATE/instance-$n.pid"))"
		else
			echo "instance $n: stopped (port $port)"
		fi
	done
}

case ${1:-} in
up) cmd_up ;;
down) cmd_down ;;
restart) cmd_restart ;;
status) cmd_status ;;
nginx-config) cmd_nginx_config ;;
help | -h | --help) usage ;;
*)
	usage >&2
	exit 2
	;;
esac
