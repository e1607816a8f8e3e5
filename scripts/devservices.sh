#!/usr/bin/env bash
# devservices.sh - private PostgreSQL + Redis for gatehouse development and tests.
#
# Usage: scripts/devservices.sh <command> [args]
#
# Commands:
#   up                 Start a private PostgreSQL cluster and Redis server on free
#                      127.0.0.1 ports (picked on first run, then reused), creating
#                      the cluster and the "gatehouse" database if needed. Installs
#                      missing server packages with apt-get when run as root.
#                      Idempotent and safe to run concurrently. Progress goes to
#                      stderr; nothing is printed on stdout.
#   env [--export]     Print the connection settings for the recorded ports:
#                        DATABASE_URL=postgres://postgres@127.0.0.1:PORT/gatehouse?sslmode=disable
#                        REDIS_URL=redis://127.0.0.1:PORT/0
#                      Plain KEY=value lines (for `set -a; . <(... env); set +a`,
#                      docker --env-file, make include); with --export they are
#                      `export KEY='value'` lines, for `eval "$(... env --export)"`.
#                      Fails if `up` was never run.
#   exec [--] CMD [ARG...]
#                      If DATABASE_URL and REDIS_URL are both set (non-empty), exec
#                      CMD untouched. Otherwise start the service(s) whose variable
#                      is unset (as `up` does), export that variable, and exec CMD.
#                      e.g. scripts/devservices.sh exec -- go test -race ./...
#   down               Stop Redis and PostgreSQL if running (data is kept).
#   clean              `down`, then delete all service state: data, logs, recorded
#                      ports. Other files in .dev/ (e.g. .dev/mail) are kept.
#   status             One line per service: running/stopped and its port.
#   redis-server-path  Print the absolute path of redis-server (installed like `up`
#                      does if missing).
#   chromium-path      Print the absolute path of Chromium for the browser tests
#                      (Debian's chromium package, installed like `up` does if
#                      missing; prints nothing when it cannot be installed).
#   promtool-path      Print the absolute path of promtool, which checks the metrics
#                      exposition and the alert rules (Debian's prometheus package,
#                      installed like `up` does if missing; its service is not
#                      started: promtool is all that is used).
#   nginx-path         Print the absolute path of nginx, the reverse proxy of
#                      `make cluster` and its tests (Debian's nginx package,
#                      installed like `up` does if missing; its service is not
#                      started: each run starts its own with its own config).
#   pgbouncer-path     Print the absolute path of pgbouncer, which the PgBouncer tests
#                      (make test-pgbouncer) start in front of the private PostgreSQL
#                      (Debian's pgbouncer package, installed like `up` does if
#                      missing; its service is not started: the tests start their own).
#   help               Show this text.
#
# State lives in <repo>/.dev/ (add .dev/ to .gitignore):
#   pg.port, redis.port   recorded ports        devservices.log  tool output
#   redis/                Redis dir, pidfile and redis.log
#   pg, postgres.log      PostgreSQL data dir and server log. As root, initdb and
#                         postgres run as the `postgres` user and these are symlinks
#                         to /var/tmp/gatehouse-dev/<sha1(repo path)[:12]>/.
#   lock                  flock(1) lock serialising up/down/clean
#
# Environment: DEVSERVICES_PG_BIN=<dir> picks the PostgreSQL bin dir (default:
# newest /usr/lib/postgresql/*/bin, else initdb on PATH).
# Exit status: 0 on success, 1 on failure, 2 on usage errors.
set -euo pipefail

PROG=scripts/devservices.sh
SCRIPT_PATH=${BASH_SOURCE[0]}
REPO=$(cd -- "$(dirname -- "$SCRIPT_PATH")/.." && pwd -P)
DEV=$REPO/.dev
LOCK_FILE=$DEV/lock
TOOL_LOG=$DEV/devservices.log
PG_PORT_FILE=$DEV/pg.port
REDIS_PORT_FILE=$DEV/redis.port
REDIS_DIR=$DEV/redis
REDIS_PIDFILE=$REDIS_DIR/redis.pid
REDIS_LOG=$REDIS_DIR/redis.log
DB_NAME=gatehouse
VAR_TMP_ROOT=/var/tmp/gatehouse-dev

if [[ $(id -u) -eq 0 ]]; then
	IS_ROOT=1
	# initdb/postgres refuse to run as root and the repo may be unreadable for the
	# postgres user, so the cluster lives in a postgres-owned folder per repo path.
	REPO_HASH=$(printf '%s' "$REPO" | sha1sum | cut -c1-12)
	PG_HOME=$VAR_TMP_ROOT/$REPO_HASH
	PG_DATA=$PG_HOME/pg
	PG_LOG=$PG_HOME/postgres.log
else
	IS_ROOT=0
	PG_HOME=
	PG_DATA=$DEV/pg
	PG_LOG=$DEV/postgres.log
fi

PG_BIN=
REDIS_SERVER=
REDIS_CLI=
APT_UPDATED=0
TIMEOUT=()
if command -v timeout >/dev/null 2>&1; then
	TIMEOUT=(timeout 10)
fi

say() { printf 'devservices: %s\n' "$*" >&2; }
die() {
	printf 'devservices: error: %s\n' "$*" >&2
	exit 1
}
usage() {
	awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$SCRIPT_PATH"
}
show_tail() { # file: print its last lines to stderr, if readable
	if [[ -r $1 ]]; then
		printf -- '--- last lines of %s ---\n' "$1" >&2
		tail -n 25 -- "$1" >&2 || true
	fi
}

# ---------------------------------------------------------------- locking ---

lock() {
	mkdir -p -- "$DEV"
	if [[ -f $TOOL_LOG && $(wc -c <"$TOOL_LOG") -gt 1000000 ]]; then
		: >"$TOOL_LOG"
	fi
	exec 9>>"$LOCK_FILE"
	if command -v flock >/dev/null 2>&1; then
		flock -w 900 9 || die "timed out waiting for $LOCK_FILE"
	fi
}
# Closing fd 9 releases the lock. Everything that may outlive us (servers, apt
# postinst scripts, the exec'd command) runs with fd 9 closed so it cannot hold it.
unlock() { exec 9>&-; }

# ------------------------------------------------------------- processes ---

proc_comm() { # pid -> command name
	if [[ -r /proc/$1/comm ]]; then
		cat "/proc/$1/comm" 2>/dev/null
	else
		ps -o comm= -p "$1" 2>/dev/null
	fi
}
pid_alive() { # pid: exists and is not a zombie (orphans may stay unreaped, e.g. in containers)
	local stat
	[[ $1 =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null || return 1
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}
read_pid() { # file -> first line if it is a pid
	local pid=
	[[ -r $1 ]] || return 1
	read -r pid <"$1" 2>/dev/null || true
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	printf '%s\n' "$pid"
}

# ------------------------------------------------------------------ ports ---

port_in_use() { # port
	local p=$1
	if command -v ss >/dev/null 2>&1; then
		[[ $(ss -ltn "( sport = :$p )" 2>/dev/null | awk 'NR > 1 { n++ } END { print n + 0 }') -gt 0 ]] && return 0
	fi
	# Fallback (and double check): something accepts connections on it.
	(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null
}
pick_port() { # [port to avoid]
	local p i
	for ((i = 0; i < 500; i++)); do
		# 20000-31999: below Linux's default ephemeral range (32768-60999).
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
		[[ $p == "${1:-}" ]] && continue
		port_in_use "$p" || {
			printf '%s\n' "$p"
			return 0
		}
	done
	die "could not find a free TCP port on 127.0.0.1"
}
read_port() { # file -> recorded port
	local p=
	[[ -r $1 ]] || return 1
	read -r p <"$1" 2>/dev/null || true
	[[ $p =~ ^[0-9]+$ ]] && ((p > 0 && p < 65536)) || return 1
	printf '%s\n' "$p"
}
write_port() { # file port
	printf '%s\n' "$2" >"$1.tmp"
	mv -f -- "$1.tmp" "$1"
}
other_port() { # file of the other service -> its port or empty
	read_port "$1" || true
}

# ------------------------------------------------------------- installing ---

apt_install() { # package... ; returns 1 if we cannot install
	[[ $IS_ROOT -eq 1 ]] && command -v apt-get >/dev/null 2>&1 || return 1
	local opts=(-q -o DPkg::Lock::Timeout=600)
	if [[ $APT_UPDATED -eq 0 ]]; then
		say "apt-get update"
		DEBIAN_FRONTEND=noninteractive apt-get "${opts[@]}" update </dev/null >>"$TOOL_LOG" 2>&1 9>&- ||
			{
				show_tail "$TOOL_LOG"
				die "apt-get update failed"
			}
		APT_UPDATED=1
	fi
	say "apt-get install $*"
	DEBIAN_FRONTEND=noninteractive apt-get "${opts[@]}" install -y --no-install-recommends "$@" \
		</dev/null >>"$TOOL_LOG" 2>&1 9>&- ||
		{
			show_tail "$TOOL_LOG"
			die "apt-get install $* failed"
		}
}

pg_bin_major() { # bindir -> major version, e.g. 15
	local v
	v=$("$1/pg_ctl" --version 2>/dev/null) || return 1
	[[ $v =~ \)\ ([0-9]+) ]] || return 1
	printf '%s\n' "${BASH_REMATCH[1]}"
}
find_pg_bin() { # [wanted major] -> bindir
	local cands=() d p tool ok
	[[ -n ${DEVSERVICES_PG_BIN:-} ]] && cands+=("$DEVSERVICES_PG_BIN")
	while IFS= read -r d; do
		cands+=("$d")
	done < <(printf '%s\n' /usr/lib/postgresql/*/bin /usr/pgsql-*/bin | sort -r -V)
	if p=$(command -v initdb 2>/dev/null); then
		cands+=("$(cd -- "$(dirname -- "$p")" && pwd)")
	fi
	for d in "${cands[@]}"; do
		ok=1
		for tool in initdb pg_ctl postgres pg_isready psql; do
			[[ -x $d/$tool ]] || ok=0
		done
		[[ $ok -eq 1 ]] || continue
		if [[ -n ${1:-} && $(pg_bin_major "$d" || true) != "$1" ]]; then
			continue
		fi
		printf '%s\n' "$d"
		return 0
	done
	return 1
}
cluster_version() { # -> major of existing cluster, or empty
	if [[ -r $PG_DATA/PG_VERSION ]]; then
		cat "$PG_DATA/PG_VERSION"
	fi
}
ensure_pg_bin() { # [noinstall]
	local want any
	want=$(cluster_version)
	PG_BIN=$(find_pg_bin "$want") && return 0
	if [[ -n $want ]] && any=$(find_pg_bin); then
		die "the dev cluster in $PG_DATA was created by PostgreSQL $want, but only $any is available; install PostgreSQL $want or run '$PROG clean' (deletes dev data)"
	fi
	[[ ${1:-} == noinstall ]] && return 1
	if apt_install postgresql; then
		PG_BIN=$(find_pg_bin "$want") || die "installed postgresql, but still found no initdb under /usr/lib/postgresql/*/bin"
		return 0
	fi
	die "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found. Install them (Debian/Ubuntu: apt-get install postgresql; Fedora: dnf install postgresql-server; macOS: brew install postgresql), point DEVSERVICES_PG_BIN at their bin dir, or run your own server and set DATABASE_URL (and REDIS_URL) for '$PROG exec'."
}

abs_cmd() { # name -> absolute path of the command (symlinks kept: Debian's redis-server is a symlink whose name matters)
	local p
	p=$(command -v "$1" 2>/dev/null) || {
		local d
		for d in /usr/bin /usr/local/bin /usr/sbin /usr/local/sbin /opt/homebrew/bin; do
			[[ -x $d/$1 ]] && {
				printf '%s\n' "$d/$1"
				return 0
			}
		done
		return 1
	}
	[[ $p == /* ]] || p=$(cd -- "$(dirname -- "$p")" && pwd)/$(basename -- "$p")
	printf '%s\n' "$p"
}
find_redis() {
	REDIS_SERVER=$(abs_cmd redis-server) && REDIS_CLI=$(abs_cmd redis-cli)
}
ensure_redis_bin() {
	find_redis && return 0
	if apt_install redis-server; then
		find_redis || die "installed redis-server, but redis-server/redis-cli are still not on PATH"
		return 0
	fi
	die "redis-server/redis-cli not found. Install them (Debian/Ubuntu: apt-get install redis-server; Fedora: dnf install redis; macOS: brew install redis), or run your own Redis and set REDIS_URL (and DATABASE_URL) for '$PROG exec'."
}

# The browser tests drive the distribution's Chromium (no browser download).
# Not being able to install it is not an error: those tests then skip.
chromium_path() {
	local p
	p=$(abs_cmd chromium) || {
		apt_install chromium || {
			say "chromium not found and cannot be installed here: the browser tests will skip"
			return 0
		}
		p=$(abs_cmd chromium) || die "installed chromium, but it is still not on PATH"
	}
	printf '%s\n' "$p"
}

# tool_path prints the absolute path of command CMD, installing Debian's
# package PKG when it is missing. Used for:
# - promtool (package prometheus): checks the /metrics exposition and
#   deploy/prometheus/alerts.yml;
# - nginx: fronts several instances in `make cluster` and its tests;
# - pgbouncer: the PgBouncer tests run gatehouse through it in transaction mode.
# Debian installs nginx and pgbouncer in /usr/sbin (not on every PATH). No
# package's service is used: apt starts none under policy-rc.d, and where it
# does, ours run on other ports with their own configuration.
tool_path() { # cmd package
	local p
	p=$(abs_cmd "$1") || {
		apt_install "$2" || die "$1 not found. Install it (Debian/Ubuntu: apt-get install $2; macOS: brew install $2) or put it on PATH."
		p=$(abs_cmd "$1") || die "installed $2, but $1 is still not on PATH or in /usr/sbin"
	}
	printf '%s\n' "$p"
}

# ------------------------------------------------------------- postgresql ---

# Run a command as the cluster owner: the postgres user when we are root.
as_pg() {
	if [[ $IS_ROOT -eq 1 ]]; then
		(cd / && runuser -u postgres -- "$@") </dev/null 9>&-
	else
		"$@" </dev/null 9>&-
	fi
}

check_layout() {
	if [[ $IS_ROOT -eq 1 && -e $DEV/pg && ! -L $DEV/pg ]]; then
		die "$DEV/pg is a plain directory made by a non-root run; use that user (or delete it) - as root the cluster lives under $VAR_TMP_ROOT"
	fi
	if [[ $IS_ROOT -eq 0 && -L $DEV/pg ]]; then
		die "$DEV/pg was set up by root (-> $(readlink -- "$DEV/pg")); run this as root, or run '$PROG clean' as root first"
	fi
}

# 0 if our postmaster is running. A postmaster.pid whose pid is dead or belongs
# to some other process is stale.
pg_running() {
	local pid cwd comm real
	pid=$(read_pid "$PG_DATA/postmaster.pid") || return 1
	pid_alive "$pid" || return 1
	comm=$(proc_comm "$pid" || true)
	[[ $comm == postgres || $comm == postmaster ]] || return 1
	if cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null); then
		real=$(cd -- "$PG_DATA" 2>/dev/null && pwd -P) || return 1
		[[ $cwd == "$real" ]] || return 1
	fi
	return 0
}

prepare_pg_home() {
	[[ $IS_ROOT -eq 1 ]] || {
		mkdir -p -- "$DEV"
		return 0
	}
	getent passwd postgres >/dev/null 2>&1 || die "user 'postgres' does not exist (it comes with the postgresql package)"
	command -v runuser >/dev/null 2>&1 || die "runuser (util-linux) is required when running as root"
	mkdir -p -- "$VAR_TMP_ROOT"
	# /var/tmp is world-writable: only trust a root-owned real directory.
	if [[ -L $VAR_TMP_ROOT || ! -d $VAR_TMP_ROOT || $(stat -c %u -- "$VAR_TMP_ROOT") != 0 ]]; then
		die "$VAR_TMP_ROOT must be a directory owned by root"
	fi
	chmod 755 -- "$VAR_TMP_ROOT"
	mkdir -p -- "$PG_HOME"
	chown postgres:postgres -- "$PG_HOME"
	chmod 700 -- "$PG_HOME"
	printf '%s\n' "$REPO" >"$PG_HOME/repo-path"
	ln -sfn -- "$PG_DATA" "$DEV/pg"
	ln -sfn -- "$PG_LOG" "$DEV/postgres.log"
}

pg_init() {
	[[ -f $PG_DATA/PG_VERSION ]] && return 0
	if [[ -e $PG_DATA ]]; then
		say "postgres: removing incomplete data dir $PG_DATA"
		rm -rf -- "$PG_DATA"
	fi
	local locale_opt=--no-locale locales
	locales=$(locale -a 2>/dev/null || true)
	if grep -qiE '^c\.utf-?8$' <<<"$locales"; then
		locale_opt=--locale=C.UTF-8
	fi
	# --no-sync: disposable cluster, like fsync=off below.
	say "postgres: initdb $PG_DATA"
	as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 "$locale_opt" --no-sync >>"$TOOL_LOG" 2>&1 ||
		{
			show_tail "$TOOL_LOG"
			die "initdb failed"
		}
}

shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

pg_start() { # port
	local port=$1 sock opts _ lockf pid
	sock=$(cd -- "$PG_DATA" && pwd -P)
	# The unix socket goes in the data dir; paths over ~107 bytes are not
	# possible for sockets, then go TCP-only (all our clients use TCP anyway).
	((${#sock} <= 90)) || sock=
	for _ in 1 2 3; do
		if [[ -e $PG_DATA/postmaster.pid ]]; then
			say "postgres: removing stale postmaster.pid"
			rm -f -- "$PG_DATA/postmaster.pid"
		fi
		# Socket lock files of a dead (e.g. kill -9'd, possibly zombie) postmaster.
		for lockf in "$PG_DATA"/.s.PGSQL.*.lock; do
			[[ -e $lockf ]] || continue
			pid=$(read_pid "$lockf") && pid_alive "$pid" && continue
			rm -f -- "$lockf"
		done
		if port_in_use "$port"; then
			port=$(pick_port "$(other_port "$REDIS_PORT_FILE")")
			say "postgres: recorded port is taken by another process, switching to $port"
			write_port "$PG_PORT_FILE" "$port"
		fi
		# fsync/full_page_writes/synchronous_commit off: this is a disposable
		# dev/test cluster, speed matters more than crash safety.
		opts="-c listen_addresses=127.0.0.1 -p $port -k $(shq "$sock")"
		opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
		opts+=" -c max_connections=400 -c shared_buffers=128MB"
		say "postgres: starting on 127.0.0.1:$port"
		if as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 -o "$opts" start >>"$TOOL_LOG" 2>&1; then
			return 0
		fi
		# A kill -9'd postmaster can leave backends that still hold its shared
		# memory for a moment, or the port was grabbed meanwhile: retry.
		pg_running && return 0
		sleep 2
	done
	show_tail "$TOOL_LOG"
	show_tail "$PG_LOG"
	die "postgres failed to start"
}

psql_admin() { # port sql
	"$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
		"host=127.0.0.1 port=$1 user=postgres dbname=postgres sslmode=disable connect_timeout=10" \
		-c "$2" </dev/null 9>&-
}

pg_up() {
	local port i exists
	check_layout
	prepare_pg_home
	pg_init
	port=$(read_port "$PG_PORT_FILE") || {
		port=$(pick_port "$(other_port "$REDIS_PORT_FILE")")
		write_port "$PG_PORT_FILE" "$port"
	}
	if pg_running; then
		say "postgres: already running on 127.0.0.1:$port"
	else
		pg_start "$port"
		port=$(read_port "$PG_PORT_FILE")
	fi
	for ((i = 0; ; i++)); do
		"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 2 </dev/null 9>&- && break
		((i < 60)) || {
			show_tail "$PG_LOG"
			die "postgres on 127.0.0.1:$port does not accept connections"
		}
		sleep 1
	done
	exists=$(psql_admin "$port" "select 1 from pg_database where datname = '$DB_NAME'" 2>>"$TOOL_LOG") ||
		{
			show_tail "$TOOL_LOG"
			die "cannot query postgres on 127.0.0.1:$port"
		}
	if [[ $exists != 1 ]]; then
		say "postgres: creating database $DB_NAME"
		psql_admin "$port" "create database $DB_NAME" >>"$TOOL_LOG" 2>&1 ||
			{
				show_tail "$TOOL_LOG"
				die "create database $DB_NAME failed"
			}
	fi
	say "postgres: ready, $(database_url "$port")"
}

pg_down() {
	local pid i
	pg_running || {
		say "postgres: not running"
		return 0
	}
	pid=$(read_pid "$PG_DATA/postmaster.pid")
	say "postgres: stopping (pid $pid)"
	if ensure_pg_bin noinstall; then
		as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >>"$TOOL_LOG" 2>&1 ||
			as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 30 stop >>"$TOOL_LOG" 2>&1 || true
	else
		kill -INT "$pid" 2>/dev/null || true # SIGINT = fast shutdown
	fi
	for ((i = 0; i < 60; i++)); do
		pid_alive "$pid" || return 0
		sleep 0.5
	done
	show_tail "$TOOL_LOG"
	say "postgres: still running (pid $pid)"
	return 1
}

database_url() { # port
	printf 'postgres://postgres@127.0.0.1:%s/%s?sslmode=disable\n' "$1" "$DB_NAME"
}

# ------------------------------------------------------------------ redis ---

rcli() { # port args...
	local port=$1
	shift
	env -u REDISCLI_AUTH "${TIMEOUT[@]}" "$REDIS_CLI" -h 127.0.0.1 -p "$port" "$@" </dev/null 9>&-
}
# 0 if the Redis on the recorded port is ours (its dir is our redis dir).
redis_running() {
	local port dir real
	port=$(read_port "$REDIS_PORT_FILE") || return 1
	[[ -d $REDIS_DIR && -n $REDIS_CLI ]] || return 1
	real=$(cd -- "$REDIS_DIR" && pwd -P)
	dir=$(rcli "$port" --raw config get dir 2>/dev/null | sed -n 2p) || return 1
	[[ $dir == "$real" ]]
}
# pid from the pidfile if it is a live redis-server process
redis_pidfile_pid() {
	local pid comm
	pid=$(read_pid "$REDIS_PIDFILE") || return 1
	pid_alive "$pid" || return 1
	comm=$(proc_comm "$pid" || true)
	[[ $comm == redis-server* ]] || return 1
	printf '%s\n' "$pid"
}

redis_up() {
	local port i _
	mkdir -p -- "$REDIS_DIR"
	port=$(read_port "$REDIS_PORT_FILE") || {
		port=$(pick_port "$(other_port "$PG_PORT_FILE")")
		write_port "$REDIS_PORT_FILE" "$port"
	}
	if redis_running; then
		say "redis: already running on 127.0.0.1:$port"
		return 0
	fi
	for _ in 1 2 3; do
		if redis_pidfile_pid >/dev/null; then
			# Ours (pidfile), but not answering on the recorded port: restart it.
			redis_down
		fi
		rm -f -- "$REDIS_PIDFILE"
		if port_in_use "$port"; then
			port=$(pick_port "$(other_port "$PG_PORT_FILE")")
			say "redis: recorded port is taken by another process, switching to $port"
			write_port "$REDIS_PORT_FILE" "$port"
		fi
		say "redis: starting on 127.0.0.1:$port"
		"$REDIS_SERVER" --bind 127.0.0.1 --port "$port" --daemonize yes \
			--pidfile "$REDIS_PIDFILE" --dir "$REDIS_DIR" --logfile "$REDIS_LOG" \
			--save "" --appendonly no </dev/null >>"$TOOL_LOG" 2>&1 9>&- || true
		for ((i = 0; i < 60; i++)); do
			if redis_running; then
				say "redis: ready, redis://127.0.0.1:$port/0"
				return 0
			fi
			# Gave up (e.g. port grabbed meanwhile): no point waiting.
			((i > 4)) && ! redis_pidfile_pid >/dev/null && break
			sleep 0.5
		done
	done
	show_tail "$TOOL_LOG"
	show_tail "$REDIS_LOG"
	die "redis failed to start"
}

redis_down() {
	local port pid i
	pid=$(redis_pidfile_pid) || pid=
	if redis_running; then
		port=$(read_port "$REDIS_PORT_FILE")
		say "redis: stopping (port $port)"
		rcli "$port" shutdown nosave >/dev/null 2>&1 || true
	elif [[ -n $pid ]]; then
		say "redis: stopping (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
	else
		say "redis: not running"
		rm -f -- "$REDIS_PIDFILE"
		return 0
	fi
	for ((i = 0; i < 40; i++)); do
		if ! redis_running && { [[ -z $pid ]] || ! pid_alive "$pid"; }; then
			rm -f -- "$REDIS_PIDFILE"
			return 0
		fi
		sleep 0.25
	done
	[[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null && sleep 0.5
	if redis_running; then
		say "redis: still running"
		return 1
	fi
	rm -f -- "$REDIS_PIDFILE"
}

# --------------------------------------------------------------- commands ---

do_up() { # services... (postgres redis)
	local s want_pg=0 want_redis=0
	for s in "$@"; do
		case $s in
		postgres) want_pg=1 ;;
		redis) want_redis=1 ;;
		esac
	done
	# Install whatever is missing before starting anything.
	if [[ $want_pg -eq 1 ]]; then
		check_layout
		ensure_pg_bin
	fi
	[[ $want_redis -eq 1 ]] && ensure_redis_bin
	[[ $want_pg -eq 1 ]] && pg_up
	[[ $want_redis -eq 1 ]] && redis_up
	return 0
}

do_down() {
	local rc=0
	find_redis || true
	redis_down || rc=1
	pg_down || rc=1
	return "$rc"
}

cmd_env() {
	local pg_port redis_port prefix='' q=''
	case ${1:-} in
	'') ;;
	--export)
		prefix='export '
		q="'"
		;;
	*)
		usage >&2
		exit 2
		;;
	esac
	if ! pg_port=$(read_port "$PG_PORT_FILE") || ! redis_port=$(read_port "$REDIS_PORT_FILE"); then
		die "no recorded ports in $DEV: run '$PROG up' first"
	fi
	printf '%sDATABASE_URL=%s%s%s\n' "$prefix" "$q" "$(database_url "$pg_port")" "$q"
	printf '%sREDIS_URL=%sredis://127.0.0.1:%s/0%s\n' "$prefix" "$q" "$redis_port" "$q"
}

cmd_status() {
	local port
	check_layout
	find_redis || true
	port=$(read_port "$PG_PORT_FILE" || true)
	if pg_running; then
		echo "postgres: running on 127.0.0.1:$port (data $PG_DATA)"
	elif [[ -n $port || -f $PG_DATA/PG_VERSION ]]; then
		echo "postgres: stopped (port ${port:-none})"
	else
		echo "postgres: stopped (not set up; run '$PROG up')"
	fi
	port=$(read_port "$REDIS_PORT_FILE" || true)
	if redis_running; then
		echo "redis: running on 127.0.0.1:$port"
	elif [[ -n $port ]]; then
		echo "redis: stopped (port $port)"
	else
		echo "redis: stopped (not set up; run '$PROG up')"
	fi
}

cmd_clean() {
	do_down || die "could not stop the services; nothing deleted"
	say "deleting service state"
	if [[ $IS_ROOT -eq 1 ]]; then
		[[ -n $REPO_HASH && -d $PG_HOME ]] && rm -rf -- "$PG_HOME"
		# Only our symlinks; a plain dir here belongs to a non-root run.
		[[ -L $DEV/pg ]] && rm -f -- "$DEV/pg"
		[[ -L $DEV/postgres.log ]] && rm -f -- "$DEV/postgres.log"
	else
		rm -rf -- "$DEV/pg"
		rm -f -- "$DEV/postgres.log"
	fi
	rm -rf -- "$REDIS_DIR"
	rm -f -- "$PG_PORT_FILE" "$REDIS_PORT_FILE" "$TOOL_LOG"
	say "clean: done"
}

cmd_exec() {
	[[ ${1:-} == -- ]] && shift
	[[ $# -gt 0 ]] || {
		usage >&2
		exit 2
	}
	if [[ -n ${DATABASE_URL:-} && -n ${REDIS_URL:-} ]]; then
		exec "$@"
	fi
	local services=() url
	[[ -z ${DATABASE_URL:-} ]] && services+=(postgres)
	[[ -z ${REDIS_URL:-} ]] && services+=(redis)
	lock
	do_up "${services[@]}"
	unlock
	if [[ -z ${DATABASE_URL:-} ]]; then
		url=$(database_url "$(read_port "$PG_PORT_FILE")")
		export DATABASE_URL=$url
	fi
	if [[ -z ${REDIS_URL:-} ]]; then
		url="redis://127.0.0.1:$(read_port "$REDIS_PORT_FILE")/0"
		export REDIS_URL=$url
	fi
	exec "$@"
}

main() {
	local cmd=${1:-}
	[[ $# -gt 0 ]] && shift
	case $cmd in
	up)
		lock
		do_up postgres redis
		;;
	env) cmd_env "$@" ;;
	exec) cmd_exec "$@" ;;
	down)
		lock
		check_layout
		do_down
		;;
	clean)
		lock
		check_layout
		cmd_clean
		;;
	status) cmd_status ;;
	redis-server-path)
		lock
		ensure_redis_bin
		printf '%s\n' "$REDIS_SERVER"
		;;
	chromium-path)
		lock
		chromium_path
		;;
	promtool-path)
		lock
		tool_path promtool prometheus
		;;
	nginx-path)
		lock
		tool_path nginx nginx
		;;
	pgbouncer-path)
		lock
		tool_path pgbouncer pgbouncer
		;;
	help | -h | --help) usage ;;
	*)
		usage >&2
		exit 2
		;;
	esac
}

main "$@"
