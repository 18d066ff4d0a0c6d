#!/bin/sh
# Install what tsunagi needs on Debian 12, and nothing when it is all there.
#   scripts/deps.sh build   compiler, CMake, libraries (make, make run)
#   scripts/deps.sh test    + cmocka, sanitizer runtime, test peers, clang and libFuzzer (make test)
#   scripts/deps.sh fuzz    + clang and libFuzzer (make fuzz)
#   scripts/deps.sh bench   + wrk, nginx, gnuplot, libwebsockets, coturn, Node peers (make bench)
set -eu
profile=${1:-build}
cd "$(dirname "$0")/.."

build_pkgs="build-essential cmake pkg-config libssl-dev zlib1g-dev libjansson-dev libcurl4-openssl-dev"
test_pkgs="$build_pkgs libcmocka-dev curl python3 procps iproute2 openssl chromium firefox-esr python3-websockets coturn python3-aioice clang libclang-rt-14-dev"
fuzz_pkgs="$build_pkgs clang libclang-rt-14-dev"
bench_pkgs="$build_pkgs wrk nginx-light gnuplot-nox python3 procps libwebsockets-dev coturn"

case "$profile" in
build) pkgs=$build_pkgs ;;
test) pkgs=$test_pkgs ;;
fuzz) pkgs=$fuzz_pkgs ;;
bench) pkgs=$bench_pkgs ;;
*) echo "deps.sh: unknown profile '$profile' (build, test, fuzz, bench)" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
    # dpkg-query answers "install ok installed" only for a package that is fully there.
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

# Node.js may come from elsewhere than Debian (with its own npm): ask for the
# commands, not the packages.
if { [ "$profile" = test ] || [ "$profile" = bench ]; } && ! command -v npm >/dev/null 2>&1; then
    missing="$missing nodejs npm"
fi

if [ -n "$missing" ]; then
    echo "deps.sh: installing$missing"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q
    # --no-install-recommends keeps it small; policy-rc.d stops nginx and coturn from starting themselves.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod +x /usr/sbin/policy-rc.d
        trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    $sudo apt-get install -y -q --no-install-recommends $missing
fi

# npm packages for browser and interop tests (and the benchmarks' Node peers:
# ws, peer) live in a git-ignored folder.
if { [ "$profile" = test ] || [ "$profile" = bench ]; } && [ -f tests/package.json ]; then
    if [ ! -d tests/node_modules ] || [ tests/package.json -nt tests/node_modules/.stamp ]; then
        echo "deps.sh: npm install in tests/"
        (cd tests && npm install --no-audit --no-fund --loglevel=error && touch node_modules/.stamp)
    fi
fi
exit 0
