#!/usr/bin/env bash
# selftest.sh: checks that the peers in this directory work on this machine,
# without trunkd: SIPp UACs against kamailio-registrar.cfg, and against the
# SIPp UAS scenarios. Loopback only; every process bounded by `timeout` and
# stopped by its PID at the end. Takes about 15 s.
#
#   bash tests/peers/selftest.sh            # needs: sipp, kamailio, python3
#   KEEP=1 bash tests/peers/selftest.sh     # keep the work dir with all logs
#
# Prints "N passed, N failed" last; exits 1 if any check failed, 77 if sipp or
# kamailio is missing (apt-get install -y sip-tester kamailio).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
for bin in sipp kamailio python3; do
    command -v "$bin" >/dev/null || { echo "selftest: $bin not installed: skipped"; exit 77; }
done

W=$(mktemp -d /tmp/trunkd-peers.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    sleep 0.3
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    if [ "${KEEP:-0}" = 1 ]; then echo "logs kept in $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

PASS=0; FAIL=0
ok()  { PASS=$((PASS+1)); echo "ok   - $*"; }
bad() { FAIL=$((FAIL+1)); echo "FAIL - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

# A free loopback port (UDP and TCP both free at the time of asking).
free_port() {
    python3 - <<'EOF'
import socket
while True:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        t.close(); u.close()
EOF
}

# start_kamailio NAME [-A ...]: sets KPORT_<NAME>; log in $W/NAME/kamailio.log
start_kamailio() {
    local name=$1; shift
    local port run
    port=$(free_port); run="$W/$name"; mkdir -p "$run"
    timeout 120 kamailio -f "$HERE/kamailio-registrar.cfg" -DD -E -n 1 -m 32 -M 8 \
        -Y "$run" -P "$run/kamailio.pid" -w "$run" "$@" \
        -l "udp:127.0.0.1:$port" -l "tcp:127.0.0.1:$port" >"$run/kamailio.log" 2>&1 &
    PIDS+=($!)
    eval "KPORT_$name=$port"
    # ready when it answers OPTIONS
    local i
    for i in $(seq 1 25); do
        if sipp_uac "$name-ready" "$HERE/sipp-uac-options.xml" u1 "$port" -timeout 2s >/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

# sipp_uac TAG SCENARIO TRANSPORT PORT [args...]: runs a SIPp UAC, returns its
# exit code; logs in $W/TAG.{msg,err,log}.log
sipp_uac() {
    local tag=$1 sf=$2 tr=$3 port=$4; shift 4
    local lp; lp=$(free_port)
    timeout 60 sipp -sf "$sf" -i 127.0.0.1 -p "$lp" -t "$tr" -m 1 -nostdin \
        -timeout 15s -timeout_error -default_behaviors abortunexp \
        -trace_msg -message_file "$W/$tag.msg.log" -trace_err -error_file "$W/$tag.err.log" \
        -trace_logs -log_file "$W/$tag.log.log" "$@" "127.0.0.1:$port" \
        >"$W/$tag.stdout" 2>"$W/$tag.stderr"
}

# start_uas TAG SCENARIO TRANSPORT [args...]: starts a SIPp UAS in the
# background; sets UPORT and UPID (the PID of `timeout`, which passes SIGTERM
# on to SIPp, and whose exit code is SIPp's); logs in $W/TAG.*
start_uas() {
    local tag=$1 sf=$2 tr=$3; shift 3
    UPORT=$(free_port)
    timeout 60 sipp -sf "$sf" -i 127.0.0.1 -p "$UPORT" -t "$tr" -nostdin \
        -trace_msg -message_file "$W/$tag.msg.log" -trace_err -error_file "$W/$tag.err.log" \
        -trace_logs -log_file "$W/$tag.log.log" "$@" \
        >"$W/$tag.stdout" 2>"$W/$tag.stderr" &
    UPID=$!
    PIDS+=($UPID)
    sleep 0.5   # SIPp binds within a few ms; no readiness signal for a UAS
}
# uas_rc PID: waits for that UAS; sets RC to its exit code
uas_rc() { wait "$1"; RC=$?; }

has() { grep -q -e "$2" "$1" 2>/dev/null; }

echo "sipp: $(sipp -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -1)  kamailio: $(kamailio -v | head -1)"
echo "work dir: $W"

# ---- Kamailio registrar, defaults ----
if start_kamailio k1; then ok "kamailio starts and answers OPTIONS (udp)"; else bad "kamailio starts"; fi
KLOG="$W/k1/kamailio.log"

check "OPTIONS over TCP -> 200" sipp_uac opt-tcp "$HERE/sipp-uac-options.xml" t1 "$KPORT_k1"

sipp_uac reg-udp "$HERE/sipp-uac-register.xml" u1 "$KPORT_k1" -s trunk1 -au trunk1 -ap s3cret-trunk1
check "trunk1 REGISTER udp: 401 then 200" [ $? = 0 ]
check "trunk1 granted 600 of 3600 (Contact expires=600)" has "$W/reg-udp.log.log" "GRANTED expires=600 "
check "kamailio logged REGISTERED granted=600" has "$KLOG" "REGISTRAR REGISTERED user=trunk1 .* granted=600 -> 200"

sipp_uac reg-tcp "$HERE/sipp-uac-register.xml" t1 "$KPORT_k1" -s trunk2 -au trunk2 -ap s3cret-trunk2
check "trunk2 REGISTER tcp: 401 then 200" [ $? = 0 ]

sipp_uac reg-bad "$HERE/sipp-uac-register.xml" u1 "$KPORT_k1" -s trunk1 -au trunk1 -ap wrong
check "wrong password: SIPp UAC fails" [ $? = 1 ]
check "wrong password: second 401" has "$W/reg-bad.err.log" "SIP/2.0 401 Unauthorized"
check "kamailio logged AUTH-FAIL invalid-password" has "$KLOG" "REGISTRAR AUTH-FAIL user=trunk1 .*reason=invalid-password rc=-2 -> 401"

sipp_uac reg-refresh "$HERE/sipp-uac-register-refresh.xml" u1 "$KPORT_k1" -s trunk1 -au trunk1 -ap s3cret-trunk1 -d 500
check "kamailio accepts a refresh with the same nonce (nc=2)" has "$W/reg-refresh.log.log" "REFRESH 200"

# ---- Kamailio registrar, -A overrides ----
if start_kamailio k2 -A MAX_EXPIRES=120 -A AUTH_FAIL_403; then ok "kamailio starts with -A MAX_EXPIRES=120 -A AUTH_FAIL_403"; else bad "kamailio k2 starts"; fi
sipp_uac k2-reg "$HERE/sipp-uac-register.xml" u1 "$KPORT_k2" -s trunk2 -au trunk2 -ap s3cret-trunk2
check "MAX_EXPIRES=120: granted 120" has "$W/k2-reg.log.log" "GRANTED expires=120 "
sipp_uac k2-bad "$HERE/sipp-uac-register.xml" u1 "$KPORT_k2" -s trunk2 -au trunk2 -ap wrong
check "AUTH_FAIL_403: wrong password -> 403" has "$W/k2-bad.err.log" "SIP/2.0 403 Forbidden"

# ---- SIPp UAS: challenge / 200 expires=10 / 403 on refresh ----
for tr in u1 t1; do
    start_uas "ch-$tr" "$HERE/sipp-registrar-challenge.xml" "$tr" -m 1 -timeout 30s -timeout_error -default_behaviors abortunexp
    sipp_uac "ch-uac-$tr" "$HERE/sipp-uac-register-refresh.xml" "$tr" "$UPORT" -s trunk-sipp -au trunk-sipp -ap s3cret-sipp -d 1000
    check "sipp-registrar-challenge ($tr): UAC 401 -> 200 expires=10 -> refresh 403" \
        has "$W/ch-uac-$tr.log.log" "REFRESH 403"
    check "sipp-registrar-challenge ($tr): UAC saw expires=10" has "$W/ch-uac-$tr.log.log" "GRANTED expires=10 "
    uas_rc "$UPID"
    check "sipp-registrar-challenge ($tr): UAS exits 0" [ "$RC" = 0 ]
    check "sipp-registrar-challenge ($tr): UAS logged AUTH-OK and a good refresh" \
        has "$W/ch-$tr.log.log" "REFRESH-AUTH ok=1"
done

start_uas ch-bad "$HERE/sipp-registrar-challenge.xml" u1 -m 1 -timeout 30s -timeout_error -default_behaviors abortunexp
sipp_uac ch-bad-uac "$HERE/sipp-uac-register.xml" u1 "$UPORT" -s trunk-sipp -au trunk-sipp -ap wrong
check "sipp-registrar-challenge: wrong password -> 403 to the UAC" has "$W/ch-bad-uac.err.log" "SIP/2.0 403 Forbidden"
uas_rc "$UPID"
check "sipp-registrar-challenge: wrong password -> UAS exits 1" [ "$RC" = 1 ]
check "sipp-registrar-challenge: UAS logged AUTH-FAIL" has "$W/ch-bad.log.log" "AUTH-FAIL .*digest-ok=false"

# ---- SIPp UAS: silent ----
start_uas silent "$HERE/sipp-registrar-silent.xml" u1 -nr -timeout 4s -timeout_error -default_behaviors none
sipp_uac silent-uac "$HERE/sipp-uac-register.xml" u1 "$UPORT" -s trunk1 -au trunk1 -ap x -timeout 2s
check "sipp-registrar-silent: the UAC gets no answer (fails at its -timeout)" [ $? != 0 ]
uas_rc "$UPID"
check "sipp-registrar-silent: exits at its -timeout (255)" [ "$RC" = 255 ]
n=$(grep -c '^SILENT ' "$W/silent.log.log" 2>/dev/null)
check "sipp-registrar-silent: logged the REGISTER and its retransmissions ($n)" [ "${n:-0}" -ge 3 ]

# ---- stop the registrars: SIGTERM to the main process ends all of them ----
for name in k1 k2; do
    kill -TERM "$(cat "$W/$name/kamailio.pid")" 2>/dev/null
done
sleep 1
left=0
for name in k1 k2; do [ -e "$W/$name/kamailio.pid" ] && left=1; done
check "kamailio stops on SIGTERM (pid files removed)" [ $left = 0 ]

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
