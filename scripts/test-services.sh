# Sourced by `./dev test`: makes sure a PostgreSQL and a Redis server are reachable and exports
# DESCENT_TEST_POSTGRES_URL / DESCENT_TEST_REDIS_URL for the tests.  Uses the servers on the
# standard ports when they answer; otherwise starts throwaway ones from the installed binaries
# (installing them with apt-get when missing), and installs the tools the tests drive (chromium,
# docker-compose).  Never lets the tests run without the servers.

_svc_dir=${DESCENT_TEST_SERVICES_DIR:-/tmp/descent-test-services}
_pg_port=${DESCENT_TEST_PG_PORT:-5432}
_redis_port=${DESCENT_TEST_REDIS_PORT:-6379}

_apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "error: $* missing and not root; install it (apt-get install $*) and re-run" >&2
        return 1
    fi
    echo "==> apt-get install $*"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

_pg_ready() { pg_isready -q -h 127.0.0.1 -p "$1" 2>/dev/null; }

if ! command -v pg_isready >/dev/null || ! _pg_ready "$_pg_port"; then
    command -v pg_config >/dev/null || _apt_install postgresql
    _pg_port=55432
    if ! _pg_ready "$_pg_port"; then
        echo "==> starting a throwaway PostgreSQL on 127.0.0.1:$_pg_port"
        _bindir=$(pg_config --bindir)
        _data=$_svc_dir/pg
        mkdir -p "$_svc_dir"
        _run=()
        if [ "$(id -u)" = 0 ]; then
            chown postgres "$_svc_dir" 2>/dev/null || true
            _run=(runuser -u postgres --)
        fi
        [ -d "$_data" ] || "${_run[@]}" "$_bindir/initdb" -D "$_data" -U postgres --auth=trust >/dev/null
        "${_run[@]}" "$_bindir/pg_ctl" -D "$_data" -l "$_svc_dir/pg.log" -w \
            -o "-p $_pg_port -k $_svc_dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
    fi
fi
if ! redis-cli -h 127.0.0.1 -p "$_redis_port" ping >/dev/null 2>&1; then
    command -v redis-server >/dev/null || _apt_install redis-server
    _redis_port=56379
    if ! redis-cli -h 127.0.0.1 -p "$_redis_port" ping >/dev/null 2>&1; then
        echo "==> starting a throwaway Redis on 127.0.0.1:$_redis_port"
        mkdir -p "$_svc_dir"
        redis-server --port "$_redis_port" --bind 127.0.0.1 --save '' --appendonly no \
            --dir "$_svc_dir" --daemonize yes >/dev/null
        for _ in $(seq 50); do redis-cli -p "$_redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    fi
fi
export DESCENT_TEST_POSTGRES_URL=${DESCENT_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:$_pg_port/postgres}
export DESCENT_TEST_REDIS_URL=${DESCENT_TEST_REDIS_URL:-redis://127.0.0.1:$_redis_port/0}
# Tools some tests drive: installed here (only when missing, and only as root), never by the
# tests, which fail with what to run when a tool is still missing (tests/services.py).
command -v chromium >/dev/null || _apt_install chromium || true
# tests/descent/test_compose.py parses the compose file with the `docker compose` v2 plugin when
# there is one, else with Debian's docker-compose.
if ! command -v docker-compose >/dev/null && ! docker compose version >/dev/null 2>&1; then
    _apt_install docker-compose || true
fi
echo "==> PostgreSQL: $DESCENT_TEST_POSTGRES_URL  Redis: $DESCENT_TEST_REDIS_URL"
