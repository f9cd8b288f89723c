# Shared helpers for scripts/run and scripts/test. Sourced, not run.

# ensure_packages CMD:PACKAGE ... installs the Debian package of each missing command.
ensure_packages() {
    local missing=()
    for pair in "$@"; do
        local cmd=${pair%%:*} pkg=${pair#*:}
        if [ "$cmd" = "$pkg" ] || [ -z "$cmd" ]; then
            dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
        else
            command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "Installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # Servers the tests start themselves (slapd, nginx, rsyslog...) are not started by
    # their packages: a policy-rc.d that refuses, for the install only.
    local policy=/usr/sbin/policy-rc.d own_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod 755 "$policy" && own_policy=1
    fi
    local rc=0
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" || rc=$?
    [ -n "$own_policy" ] && $sudo rm -f "$policy"
    return $rc
}

ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
    fi
    command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install the Rust toolchain (rustup)" >&2; exit 1; }
}

# ensure_web_test_tools: schemathesis in a virtualenv under target/ and, under
# tests/web/node_modules, playwright-core (driving Debian's Chromium, never a downloaded
# browser) and the browser phones JsSIP and SIP.js with esbuild to bundle them.
ensure_web_test_tools() {
    local venv=target/pyenv want=4.32.5
    if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$want"; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$want"
    fi
    command -v npm >/dev/null 2>&1 || ensure_packages npm:npm
    local m missing=
    for m in playwright-core esbuild jssip sip.js; do
        [ -d "tests/web/node_modules/$m" ] || missing=1
    done
    if [ -n "$missing" ]; then
        (cd tests/web && npm ci --no-audit --no-fund --silent)
    fi
}

# ensure_phone_tools: the softphones the call tests drive besides baresip (a Debian
# package): PJSIP's pjsua2 (PyPI pjsua2-python, a wheel with PJSIP 2.15 built in), the
# aiosmtpd mail server and the SIPVicious attack tools, in the same virtualenv under
# target/.
ensure_phone_tools() {
    local venv=target/pyenv want=2.15.1.post1
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    if ! "$venv/bin/pip" show pjsua2-python 2>/dev/null | grep -q "^Version: $want\$"; then
        "$venv/bin/pip" install -q --disable-pip-version-check "pjsua2-python==$want"
    fi
    # SIPVicious (svmap, svwar, svcrack): the attack tools the protection is tested with.
    if ! "$venv/bin/pip" show sipvicious 2>/dev/null | grep -q "^Version: 0.3.8\$"; then
        "$venv/bin/pip" install -q --disable-pip-version-check "sipvicious==0.3.8"
    fi
    # The mail server the voicemail e-mail tests send to.
    if ! "$venv/bin/pip" show aiosmtpd 2>/dev/null | grep -q "^Version: 1.4.6\$"; then
        "$venv/bin/pip" install -q --disable-pip-version-check "aiosmtpd==1.4.6"
    fi
}

# Prints how much the build takes on disk and how much is left (a CI machine's disk is
# not large: the figure shows how close a run comes).
disk_use() {
    echo "disk $1: target $(du -sh target 2>/dev/null | cut -f1), free $(df -h --output=avail . | tail -1 | tr -d ' ')"
}
