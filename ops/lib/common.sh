# Shared by ops/demo and ops/test: install what is missing, find Swift, pick free ports.
# Sourced, not executed.

GEMELLO_APT_PACKAGES=(mosquitto mosquitto-clients openssl libmosquitto-dev libsqlite3-dev zlib1g-dev libmodbus-dev pkg-config libcurl4 python3 python3-pip python3-venv curl postgresql)

# Release builds get their own scratch folder: sharing .build with the debug builds of ops/test
# makes SwiftPM rebuild every dependency in release each time (3 min here instead of seconds).
GEMELLO_RELEASE_BUILD="${GEMELLO_RELEASE_BUILD:-.build-release}"
# The agent as it ships to a site: release, the Swift runtime linked in statically, no Foundation
# (docs/BENCHMARKS.md, "Agent footprint"); a build folder of its own, since the flags differ.
GEMELLO_AGENT_BUILD="${GEMELLO_AGENT_BUILD:-.build-agent}"

# Builds that agent; prints the folder holding the binary.
build_field_agent() {
  swift build -c release --static-swift-stdlib --scratch-path "$GEMELLO_AGENT_BUILD" --product gemello-agent >&2
  swift build -c release --static-swift-stdlib --scratch-path "$GEMELLO_AGENT_BUILD" --show-bin-path
}

# The scripts give every process its state paths themselves: a GEMELLO_STATE_DIR left in the
# shell by `source .build-local/env` (ops/local) must not move them.
unset GEMELLO_STATE_DIR

say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root to run '$*' (no sudo found); run this script as root once"
  fi
}

# Installs the Debian packages that are not installed yet (apt-get update only when needed).
ensure_apt_packages() {
  local missing=()
  for package in "${GEMELLO_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  # python3/pip may come from elsewhere (pyenv): accept a working interpreter instead.
  if command -v python3 >/dev/null 2>&1; then
    local kept=()
    for package in "${missing[@]}"; do
      case "$package" in
        python3|python3-pip) python3 -m pip --version >/dev/null 2>&1 || kept+=("$package") ;;
        python3-venv) python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || kept+=("$package") ;;
        *) kept+=("$package") ;;
      esac
    done
    missing=("${kept[@]}")
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The Python modules the tests and benchmarks use, in a virtual environment of their own
# (.build-venv in the repository, git-ignored; GEMELLO_VENV moves it): never installed into the
# system's Python. It sees the system's packages (what is there already is not fetched again)
# and its bin folder goes first on PATH, so every `python3` the scripts and tests start is its own.
GEMELLO_VENV="${GEMELLO_VENV:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.build-venv}"
ensure_python_modules() {
  # jsonschema/referencing: the NGSI-LD and Smart Data Models validators; prometheus_client: the
  # reference parser the /metrics test checks our exposition with; xmlschema: CAP 1.2;
  # influxdb-client: the real Influx client the influx-listener input is tested with;
  # pymodbus: the Modbus server the modbus input is tested against.
  local modules=(jsonschema referencing prometheus_client xmlschema influxdb-client 'pymodbus>=3.10,<4')
  if [ ! -x "$GEMELLO_VENV/bin/python3" ]; then
    say "making a Python virtual environment for the tests in $GEMELLO_VENV..."
    python3 -m venv --system-site-packages "$GEMELLO_VENV" \
      || die "cannot make a Python virtual environment in $GEMELLO_VENV. Fix: apt install python3-venv"
  fi
  export PATH="$GEMELLO_VENV/bin:$PATH"
  python3 -c 'import jsonschema, referencing, prometheus_client, xmlschema, influxdb_client, pymodbus' 2>/dev/null && return 0
  say "installing Python modules into $GEMELLO_VENV: ${modules[*]}"
  python3 -m pip install --quiet "${modules[@]}" \
    || die "cannot install the Python modules into $GEMELLO_VENV (pip install ${modules[*]}); PyPI must be reachable"
}

# Debian's chromium, headless, for the dashboard check (installed on first use: ~100 MB).
ensure_chromium() {
  command -v chromium >/dev/null 2>&1 && return 0
  say "installing chromium (headless browser for the dashboard check)..."
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null \
    || die "cannot install chromium (apt-get install chromium)"
}

# Swift 6 is not packaged by Debian 12: use the toolchain on PATH or in /opt/swift.
ensure_swift() {
  if ! command -v swift >/dev/null 2>&1; then
    for dir in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
      [ -x "$dir/swift" ] && export PATH="$dir:$PATH" && break
    done
  fi
  command -v swift >/dev/null 2>&1 || die "Swift 6 is not installed: unpack a Swift 6 toolchain for Debian 12 from swift.org into /opt/swift"
  swift --version 2>&1 | grep -Eq 'Swift version (6|[7-9])\.' || die "Swift 6 or newer is required (found: $(swift --version 2>&1 | head -n1))"
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Whether 127.0.0.1:$1 accepts connections.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits up to $2 seconds for 127.0.0.1:$1.
wait_for_port() {
  local deadline=$((SECONDS + $2))
  until port_open "$1"; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.1
  done
}

# Finds the mosquitto binary (Debian installs it in /usr/sbin).
mosquitto_binary() {
  for candidate in "$(command -v mosquitto 2>/dev/null)" /usr/sbin/mosquitto /usr/local/sbin/mosquitto; do
    [ -n "$candidate" ] && [ -x "$candidate" ] && { echo "$candidate"; return 0; }
  done
  die "mosquitto is not installed (apt-get install mosquitto)"
}

# A secure local broker as a site runs it: `gemello pki init` in $1/pki (CA, broker certificate,
# ACL, password file, CRL), mosquitto with its TLS listener on 127.0.0.1:$2, allow_anonymous off.
# Needs $gemello (the CLI). Sets broker_pid. Enrol agents afterwards with enroll_agent.
start_secure_broker() {  # work-folder tls-port
  local work="$1" port="$2"
  "$gemello" pki init --pki "$work/pki" --port "$port" --broker-host localhost \
    --reload-command "kill -HUP \$(cat $work/mosquitto.pid)" >"$work/pki-init.txt" || die "gemello pki init failed"
  {
    grep -v '^allow_anonymous' ops/mosquitto.conf
    sed -E 's/^listener ([0-9]+)$/listener \1 127.0.0.1/' "$work/pki/mosquitto.conf"
    printf 'pid_file %s\nuser %s\n' "$work/mosquitto.pid" "$(id -un)"
  } >"$work/mosquitto.conf"
  setsid "$(mosquitto_binary)" -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
  broker_pid=$!
  wait_for_port "$port" 10 || die "mosquitto did not start: $(cat "$work/mosquitto.log")"
}

# Enrols agent $2 in the PKI of $1 and writes its access file (for gemello-agent --access) to $3.
enroll_agent() {  # work-folder agent-id access-file
  "$gemello" agent enroll "$2" --pki "$1/pki" --output "$3" >/dev/null || die "gemello agent enroll $2 failed"
}

# The broker keys of the aggregator's identity in the PKI of $1, for its configuration.
aggregator_access() {  # work-folder tls-port
  cat <<EOT
broker: mqtts://localhost:$2
broker-tls:
  ca-file: $1/pki/ca.crt
  cert-file: $1/pki/aggregator.crt
  key-file: $1/pki/aggregator.key
security:
  enrolment: $1/pki/agents.txt
EOT
}
