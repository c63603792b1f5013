#!/usr/bin/env bash
# Start, stop or inspect a local Tansu broker (Apache-Kafka-compatible) for tests
# and the local demo.
#
#   scripts/broker.sh start  [PORT] [--durable DB]   start tansu on 127.0.0.1:PORT in the background
#   scripts/broker.sh stop   [PORT]   stop the broker this script started (SIGTERM)
#   scripts/broker.sh status [PORT]   say what answers on 127.0.0.1:PORT
#
# PORT defaults to $EVENTFOLD_BROKER_PORT, else 19092. The pid file and log live
# in .tools/run/tansu-PORT.{pid,log}. Installs the broker first if it is missing
# (scripts/install-broker.sh). By default the storage is memory: a restart loses
# every topic. With --durable DB the broker is Tansu's libsql build
# (scripts/install-durable-broker.sh, built once per machine) storing everything
# in the SQLite file DB (created if missing), which survives a restart and even
# kill -9; mind its caveats in shared/BROKER.md (no snappy, deleting a topic
# deletes all, ~8x slower).
#
# Exit codes of `status`: 0 a tansu broker answers on the port, 3 nothing listens
# there, 4 the port is taken by something else (another Kafka broker, or a
# process that does not speak Kafka). `start` succeeds if a tansu broker already
# answers on the port, and fails if the port is taken by anything else.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TANSU="$ROOT/.tools/bin/tansu"
DURABLE_TANSU="$ROOT/.tools/bin/tansu-libsql"
RUN_DIR="$ROOT/.tools/run"
START_TIMEOUT_S=10
STOP_TIMEOUT_S=10

die() {
    echo "broker.sh: error: $*" >&2
    exit 1
}

usage() {
    echo "usage: scripts/broker.sh start [PORT] [--durable DB] | stop [PORT] | status [PORT]" >&2
    exit 2
}

[[ $# -ge 1 ]] || usage
cmd="$1"
shift
port="${EVENTFOLD_BROKER_PORT:-19092}"
durable=""
port_given=""
while [[ $# -gt 0 ]]; do
    case "$1" in
    --durable)
        [[ "$cmd" == start && $# -ge 2 && -n "$2" ]] || usage
        durable="$2"
        shift 2
        ;;
    *)
        [[ -z "$port_given" ]] || usage
        port="$1"
        port_given=1
        shift
        ;;
    esac
done
if ! [[ "$port" =~ ^[0-9]{1,5}$ ]] || ((10#$port < 1 || 10#$port > 65535)); then
    die "invalid port '$port'"
fi
port=$((10#$port))

command -v python3 >/dev/null 2>&1 || die "python3 is required"

PID_FILE="$RUN_DIR/tansu-$port.pid"
LOG_FILE="$RUN_DIR/tansu-$port.log"

# Prints "STATE PID COMM" about 127.0.0.1:PORT:
#   STATE is closed (nothing accepts connections), kafka (a Kafka ApiVersions
#   request is answered) or other (accepts connections, does not speak Kafka);
#   PID and COMM name the listening process, or are "-" when unknown (e.g. a
#   process of another user).
port_info() {
    python3 - "$1" <<'PY'
import os, socket, struct, sys

port = int(sys.argv[1])

def state():
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
    except OSError:
        return "closed"
    try:
        s.settimeout(3)
        # ApiVersions v0 request (api_key 18), request header v1.
        client_id = b"eventfold-broker-sh"
        body = struct.pack(">hhih", 18, 0, 0x5EF01D, len(client_id)) + client_id
        s.sendall(struct.pack(">i", len(body)) + body)
        head = b""
        while len(head) < 10:
            chunk = s.recv(10 - len(head))
            if not chunk:
                break
            head += chunk
        if len(head) < 10:
            return "other"
        size, corr, _err = struct.unpack(">iih", head)
        return "kafka" if corr == 0x5EF01D and size >= 6 else "other"
    except OSError:
        return "other"
    finally:
        s.close()

def listener_inodes():
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local, st, inode = fields[1], fields[3], fields[9]
                    if st == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes.add(inode)
        except OSError:
            pass
    return inodes

def owner(inodes):
    if not inodes:
        return "-", "-"
    wanted = {"socket:[%s]" % i for i in inodes}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        fd_dir = "/proc/%s/fd" % pid
        try:
            for fd in os.listdir(fd_dir):
                if os.readlink(os.path.join(fd_dir, fd)) in wanted:
                    with open("/proc/%s/comm" % pid) as f:
                        return pid, f.read().strip() or "-"
        except OSError:
            continue
    return "-", "-"

st = state()
pid, comm = owner(listener_inodes()) if st != "closed" else ("-", "-")
print(st, pid, comm)
PY
}

# True if the process exists and is not a zombie (a tansu that died while
# this script is still its parent stays a zombie until the script exits).
alive() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ "${stat:0:1}" != Z ]]
}

# True if a process name is one of the two tansu builds.
is_tansu() {
    [[ "$1" == tansu || "$1" == tansu-libsql ]]
}

# The pid in our pid file, if that process is still alive and is tansu.
our_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    alive "$pid" || return 1
    is_tansu "$(cat "/proc/$pid/comm" 2>/dev/null || true)" || return 1
    echo "$pid"
}

accepts_connections() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

log_tail() {
    if [[ -s "$LOG_FILE" ]]; then
        echo "--- last lines of $LOG_FILE ---" >&2
        tail -n 20 "$LOG_FILE" >&2
        echo "---" >&2
    fi
}

cmd_status() {
    local pid st lpid comm
    if pid="$(our_pid)" && accepts_connections "$port"; then
        echo "tansu broker running on 127.0.0.1:$port (pid $pid, started by broker.sh, log $LOG_FILE)"
        return 0
    fi
    read -r st lpid comm < <(port_info "$port") || die "could not inspect 127.0.0.1:$port (python3 failed)"
    case "$st" in
    closed)
        echo "no broker on 127.0.0.1:$port"
        return 3
        ;;
    kafka)
        if is_tansu "$comm"; then
            echo "tansu broker running on 127.0.0.1:$port (pid $lpid, not started by broker.sh)"
            return 0
        elif [[ "$comm" == - ]]; then
            # Cannot see the owner (another user's process): it speaks Kafka, use it.
            echo "a Kafka broker answers on 127.0.0.1:$port (process unknown)"
            return 0
        fi
        echo "127.0.0.1:$port is taken by a Kafka broker that is not tansu ($comm, pid $lpid)"
        return 4
        ;;
    *)
        echo "127.0.0.1:$port is taken by a process that does not speak Kafka ($comm, pid $lpid)"
        return 4
        ;;
    esac
}

cmd_start() {
    local msg rc=0
    msg="$(cmd_status)" || rc=$?
    case "$rc" in
    0)
        echo "$msg; not starting another"
        return 0
        ;;
    3) ;;
    *) die "$msg" ;;
    esac

    # Tansu opens a sqlite:// path relative to its working directory: it runs in the
    # database's folder.
    local binary="$TANSU" storage="memory://tansu/" workdir="$ROOT"
    if [[ -n "$durable" ]]; then
        "$ROOT/scripts/install-durable-broker.sh"
        binary="$DURABLE_TANSU"
        mkdir -p "$(dirname "$durable")"
        workdir="$(cd "$(dirname "$durable")" && pwd)"
        storage="sqlite://$(basename "$durable")"
    else
        "$ROOT/scripts/install-broker.sh"
    fi
    mkdir -p "$RUN_DIR"
    rm -f "$PID_FILE"
    : >"$LOG_FILE"

    # setsid: its own session, so a Ctrl-C meant for the caller does not reach
    # it and it outlives the calling shell. The inner bash writes its own pid, moves
    # to the working directory and then becomes tansu (exec), so the pid file holds
    # tansu's pid. Variables that
    # tansu reads as option defaults are cleared so only the flags below apply;
    # NO_COLOR keeps ANSI colour codes out of the log.
    # shellcheck disable=SC2016 # $$ and $@ are for the inner bash
    setsid bash -c 'echo $$ >"$1"; cd "$2" || exit 1; shift 2; exec "$@"' _ "$PID_FILE" "$workdir" \
        env -u SCHEMA_REGISTRY -u OTEL_EXPORTER_OTLP_ENDPOINT -u CLUSTER_ID NO_COLOR=1 \
        "$binary" broker \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine "$storage" \
        </dev/null >>"$LOG_FILE" 2>&1 &

    local deadline=$((SECONDS + START_TIMEOUT_S)) pid=""
    while ((SECONDS < deadline)); do
        [[ -n "$pid" ]] || pid="$(cat "$PID_FILE" 2>/dev/null || true)"
        if [[ -n "$pid" ]] && ! alive "$pid"; then
            rm -f "$PID_FILE"
            log_tail
            die "tansu exited right after starting on 127.0.0.1:$port"
        fi
        if [[ -n "$pid" ]] && accepts_connections "$port"; then
            return 0
        fi
        sleep 0.1
    done
    if [[ -n "$pid" ]]; then
        kill -TERM "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE"
    log_tail
    die "tansu did not accept connections on 127.0.0.1:$port within ${START_TIMEOUT_S}s"
}

cmd_stop() {
    local pid
    if ! pid="$(our_pid)"; then
        rm -f "$PID_FILE"
        if accepts_connections "$port"; then
            echo "broker.sh: nothing started by broker.sh on 127.0.0.1:$port; leaving whatever listens there alone" >&2
        fi
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT_S))
    while alive "$pid"; do
        if ((SECONDS >= deadline)); then
            echo "broker.sh: tansu (pid $pid) still running ${STOP_TIMEOUT_S}s after SIGTERM; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    rm -f "$PID_FILE"
}

case "$cmd" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*) usage ;;
esac
