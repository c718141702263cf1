#!/usr/bin/env bash
# selftest.sh: checks that the peers in this directory work on this machine,
# without trunkd: SIPp UACs against kamailio-registrar.cfg, and against the
# SIPp UAS scenarios; for outbound calls, reference UACs that answer the 407
# through kamailio-carrier.cfg to the callee scenarios, and the backend UACs
# straight against the callee scenarios. Loopback only; every process bounded
# by `timeout` and stopped by its PID at the end. Takes about 30 s.
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

# start_kamailio NAME [-A ...]: sets KPORT_<NAME>; log in $W/NAME/kamailio.log.
# The config is kamailio-registrar.cfg, or $KCFG if set (start_carrier).
KNAMES=()
start_kamailio() {
    local name=$1; shift
    local port run
    port=$(free_port); run="$W/$name"; mkdir -p "$run"
    KNAMES+=("$name")
    timeout 120 kamailio -f "$HERE/${KCFG:-kamailio-registrar.cfg}" -DD -E -n 1 -m 32 -M 8 \
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

# start_carrier NAME [-A ...]: start_kamailio with kamailio-carrier.cfg
start_carrier() { KCFG=kamailio-carrier.cfg start_kamailio "$@"; }

# start_uas TAG SCENARIO TRANSPORT [args...]: starts a SIPp UAS in the
# background; sets UPORT and UPID (the PID of `timeout`, which passes SIGTERM
# on to SIPp, and whose exit code is SIPp's); logs in $W/TAG.*. The port is
# free_port's, or $UAS_PORT if set (start_uas_on).
start_uas() {
    local tag=$1 sf=$2 tr=$3; shift 3
    UPORT=${UAS_PORT:-$(free_port)}
    timeout 60 sipp -sf "$sf" -i 127.0.0.1 -p "$UPORT" -t "$tr" -nostdin \
        -trace_msg -message_file "$W/$tag.msg.log" -trace_err -error_file "$W/$tag.err.log" \
        -trace_logs -log_file "$W/$tag.log.log" "$@" \
        >"$W/$tag.stdout" 2>"$W/$tag.stderr" &
    UPID=$!
    PIDS+=($UPID)
    sleep 0.5   # SIPp binds within a few ms; no readiness signal for a UAS
}
# start_uas_on PORT TAG SCENARIO TRANSPORT [args...]: start_uas on that port
start_uas_on() { local port=$1; shift; UAS_PORT=$port start_uas "$@"; }
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

# ---- Outbound calls: kamailio-carrier.cfg between a UAC that answers its 407
# ---- and the callee scenarios (trunkd's place is taken by the reference UACs)
CPORT=$(free_port)      # every callee of the carriers below listens here
AUTH=(-au trunkout -ap s3cret-out)
if start_carrier c1 -A "CALLEE=\"127.0.0.1:$CPORT\""; then ok "carrier starts with -A CALLEE and answers OPTIONS (udp)"; else bad "carrier c1 starts"; fi
CLOG="$W/c1/kamailio.log"
check "carrier: OPTIONS over TCP -> 200" sipp_uac c1-opt-tcp "$HERE/sipp-uac-options.xml" t1 "$KPORT_c1"
check "carrier logged CARRIER OPTIONS" has "$CLOG" "CARRIER OPTIONS src=127.0.0.1:[0-9]* proto=tcp -> 200"

start_uas_on "$CPORT" c1-callee "$HERE/sipp-callee-uas.xml" u1 -m 1 -timeout 30s -timeout_error -default_behaviors abortunexp \
    -set expect_ruri_user +442079460000
sipp_uac c1-call "$HERE/sipp-uac-auth-call.xml" u1 "$KPORT_c1" -s +442079460000 "${AUTH[@]}" -d 200 \
    -set pai '"PBX" <sip:+442079460123@pbx.test;user=phone>'
check "carrier call udp: UAC 407 -> ACK -> INVITE with credentials -> 200 -> BYE -> 200" [ $? = 0 ]
uas_rc "$UPID"
check "carrier call udp: callee exits 0 (R-URI user, ACK CSeq = INVITE CSeq, BYE CSeq > INVITE CSeq)" [ "$RC" = 0 ]
check "carrier logged the challenge" has "$CLOG" \
    "CARRIER INVITE ruri_user=+442079460000 from_user=+442079460123 pai=sip:+442079460123@pbx.test;user=phone cseq=1 pai_user=+442079460123 .* auth=none auth_user=none -> 407"
check "carrier logged the ACK of the 407" has "$CLOG" "CARRIER ACK cseq=1 .* route=no -> hop-by-hop"
check "carrier logged the authenticated INVITE relayed" has "$CLOG" \
    "CARRIER INVITE ruri_user=+442079460000 .* cseq=2 .* auth=ok auth_user=trunkout -> relay sip:127.0.0.1:$CPORT"
check "carrier logged ACK and BYE loose-routed" has "$CLOG" "CARRIER BYE cseq=3 .* route=yes -> relay"
check "callee saw the carrier's Record-Route" has "$W/c1-callee.msg.log" "Record-Route: <sip:127.0.0.1:$KPORT_c1;lr"
check "callee logged BYE cseq=3 > INVITE cseq=2" has "$W/c1-callee.log.log" "CALLEE BYE cseq=3 invite_cseq=2 increasing=true"
check "callee logged pai= of the INVITE" has "$W/c1-callee.log.log" "CALLEE INVITE ruri_user=+442079460000 cseq=2 from_user=+442079460123 pai=sip:+442079460123@pbx.test "

start_uas_on "$CPORT" c1-callee-tcp "$HERE/sipp-callee-uas.xml" u1 -m 1 -timeout 30s -timeout_error -default_behaviors abortunexp \
    -set expect_ruri_user 02079460000
sipp_uac c1-call-tcp "$HERE/sipp-uac-auth-call.xml" t1 "$KPORT_c1" -s 02079460000 "${AUTH[@]}"
check "carrier call tcp (callee udp): UAC exits 0" [ $? = 0 ]
uas_rc "$UPID"
check "carrier call tcp: callee exits 0 with R-URI user 02079460000" [ "$RC" = 0 ]

sipp_uac c1-badpw "$HERE/sipp-uac-auth-call.xml" u1 "$KPORT_c1" -s +442079460000 -au trunkout -ap wrong -set expect_code 403
check "carrier: wrong password -> 403 (after the 407)" [ $? = 0 ]
check "carrier logged invalid-password -> 403" has "$CLOG" "auth=fail auth_user=trunkout reason=invalid-password rc=-2 -> 403"
sipp_uac c1-unexp "$HERE/sipp-uac-auth-call.xml" u1 "$KPORT_c1" -s +442079460000 -au nobody -ap wrong
check "sipp-uac-auth-call: a refusal without -set expect_code fails the call" [ $? = 1 ]

start_uas_on "$CPORT" c1-busy "$HERE/sipp-callee-busy.xml" u1 -m 1 -timeout 30s -timeout_error -default_behaviors abortunexp
sipp_uac c1-busy-uac "$HERE/sipp-uac-auth-call.xml" u1 "$KPORT_c1" -s +442079460000 "${AUTH[@]}" -set expect_code 486
check "carrier relays the callee's 486" [ $? = 0 ]
uas_rc "$UPID"
check "sipp-callee-busy: exits 0 (got Kamailio's ACK)" [ "$RC" = 0 ]

for mode in ring no180; do
    set --; [ $mode = no180 ] && set -- -set no180 1
    start_uas_on "$CPORT" "c1-cancel-$mode" "$HERE/sipp-callee-cancel.xml" u1 -m 1 -timeout 30s -timeout_error -default_behaviors abortunexp "$@"
    sipp_uac "c1-cancel-uac-$mode" "$HERE/sipp-uac-auth-cancel.xml" u1 "$KPORT_c1" -s +442079460000 "${AUTH[@]}" -d 300 "$@"
    check "carrier CANCEL ($mode): UAC gets 200 for the CANCEL and 487" [ $? = 0 ]
    uas_rc "$UPID"
    check "carrier CANCEL ($mode): sipp-callee-cancel exits 0" [ "$RC" = 0 ]
done
set --
check "carrier logged CANCEL -> relay" has "$CLOG" "CARRIER CANCEL cseq=2 .* -> relay"

# ---- carrier knobs ----
if start_carrier c2 -A REJECT_CODE=503; then ok "carrier starts with -A REJECT_CODE=503"; else bad "carrier c2 starts"; fi
sipp_uac c2-rej "$HERE/sipp-uac-auth-call.xml" u1 "$KPORT_c2" -s +442079460000 "${AUTH[@]}" -set expect_code 503
check "REJECT_CODE=503: the authenticated INVITE gets 503" [ $? = 0 ]
check "REJECT_CODE=503: logged -> 503" has "$W/c2/kamailio.log" "CARRIER INVITE .* cseq=2 .* auth=ok auth_user=trunkout -> 503"

if start_carrier c3 -A CHALLENGE_BYE -A "CALLEE=\"127.0.0.1:$CPORT\""; then ok "carrier starts with -A CHALLENGE_BYE"; else bad "carrier c3 starts"; fi
start_uas_on "$CPORT" c3-callee "$HERE/sipp-callee-uas.xml" u1 -m 1 -timeout 30s -timeout_error -default_behaviors abortunexp
sipp_uac c3-call "$HERE/sipp-uac-auth-call.xml" u1 "$KPORT_c3" -s +442079460000 "${AUTH[@]}"
check "CHALLENGE_BYE: UAC exits 0" [ $? = 0 ]
check "CHALLENGE_BYE: BYE cseq=3 challenged, cseq=4 answered" has "$W/c3-call.log.log" "BYE-OK cseq=4 "
uas_rc "$UPID"
check "CHALLENGE_BYE: callee exits 0" [ "$RC" = 0 ]
check "CHALLENGE_BYE: callee saw BYE cseq=4 > INVITE cseq=2" has "$W/c3-callee.log.log" "CALLEE BYE cseq=4 invite_cseq=2 increasing=true"
check "CHALLENGE_BYE: logged -> 407 then auth=ok -> relay" \
    sh -c "grep -q 'CARRIER BYE cseq=3 .* auth=none auth_user=none -> 407' '$W/c3/kamailio.log' && grep -q 'CARRIER BYE cseq=4 .* auth=ok auth_user=trunkout -> relay' '$W/c3/kamailio.log'"

if start_carrier c4 -A SILENT; then ok "carrier starts with -A SILENT (still answers OPTIONS)"; else bad "carrier c4 starts"; fi
sipp_uac c4-silent "$HERE/sipp-uac-auth-call.xml" u1 "$KPORT_c4" -s +442079460000 "${AUTH[@]}" -timeout 2s
check "SILENT: the UAC gets nothing (exits at its -timeout)" [ $? = 255 ]
n=$(grep -c 'CARRIER INVITE .* -> dropped' "$W/c4/kamailio.log" 2>/dev/null)
check "SILENT: logged the INVITE and its retransmissions as dropped ($n)" [ "${n:-0}" -ge 2 ]

# syntax of the knobs not started above
cfg_ok() { timeout 20 kamailio -f "$HERE/kamailio-carrier.cfg" -c "$@" >/dev/null 2>&1; }
check "kamailio-carrier.cfg -c -A REJECT_CODE=486 -A 'REJECT_REASON=\"Busy Here\"'" \
    cfg_ok -A REJECT_CODE=486 -A 'REJECT_REASON="Busy Here"'
check "kamailio-carrier.cfg -c -A FR_TIMER=2000 -A FR_INV_TIMER=5000 -A NONCE_EXPIRE=30 -A DEBUG_LEVEL=3" \
    cfg_ok -A FR_TIMER=2000 -A FR_INV_TIMER=5000 -A NONCE_EXPIRE=30 -A DEBUG_LEVEL=3

# ---- Backend UACs straight against the callee UASs (no trunkd, no carrier):
# ---- they parse and flow; the backend's CSeq checks hold trivially here
start_uas bo-callee "$HERE/sipp-callee-uas.xml" u1 -m 1 -timeout 30s -timeout_error -default_behaviors abortunexp \
    -set expect_ruri_user +442079460000
sipp_uac bo-call "$HERE/sipp-backend-outbound.xml" u1 "$UPORT" -s +442079460000 -d 200
check "sipp-backend-outbound -> sipp-callee-uas: backend exits 0" [ $? = 0 ]
uas_rc "$UPID"
check "sipp-backend-outbound -> sipp-callee-uas: callee exits 0" [ "$RC" = 0 ]
check "sipp-backend-outbound: logged ANSWERED cseq=1 and BYE-OK cseq=2" \
    sh -c "grep -q '^ANSWERED cseq=1 ' '$W/bo-call.log.log' && grep -q '^BYE-OK cseq=2 ' '$W/bo-call.log.log'"
check "sipp-backend-outbound: no X-Trunk without -set xtrunk" sh -c "! grep -q X-Trunk '$W/bo-call.msg.log'"

start_uas bo-callee2 "$HERE/sipp-callee-uas.xml" u1 -m 1 -timeout 30s -timeout_error -default_behaviors abortunexp
sipp_uac bo-pinned "$HERE/sipp-backend-outbound.xml" u1 "$UPORT" -s 02079460000 -set xtrunk lab
check "sipp-backend-outbound -set xtrunk lab: exits 0" [ $? = 0 ]
uas_rc "$UPID"
check "sipp-backend-outbound -set xtrunk lab: the INVITE has X-Trunk: lab" has "$W/bo-pinned.msg.log" "^X-Trunk: lab"

start_uas bo-busy "$HERE/sipp-callee-busy.xml" u1 -m 1 -timeout 30s -timeout_error -default_behaviors abortunexp
sipp_uac bo-rej "$HERE/sipp-backend-outbound-rejected.xml" u1 "$UPORT" -s +442079460000
check "sipp-backend-outbound-rejected -> sipp-callee-busy: exits 0" [ $? = 0 ]
check "sipp-backend-outbound-rejected: logged REFUSED code=486" has "$W/bo-rej.log.log" "^REFUSED code=486 .*status=SIP/2.0 486 Busy Here"
uas_rc "$UPID"
check "sipp-callee-busy: got the backend's ACK" [ "$RC" = 0 ]

start_uas bo-cc "$HERE/sipp-callee-cancel.xml" u1 -m 1 -timeout 30s -timeout_error -default_behaviors abortunexp
sipp_uac bo-cancel "$HERE/sipp-backend-outbound-cancel.xml" u1 "$UPORT" -s +442079460000
check "sipp-backend-outbound-cancel -> sipp-callee-cancel: exits 0" [ $? = 0 ]
uas_rc "$UPID"
check "sipp-callee-cancel: exits 0" [ "$RC" = 0 ]

start_uas bo-cc2 "$HERE/sipp-callee-cancel.xml" u1 -m 1 -timeout 30s -timeout_error -default_behaviors abortunexp -set no180 1
sipp_uac bo-cancel-trying "$HERE/sipp-backend-outbound-cancel-trying.xml" u1 "$UPORT" -s +442079460000 -d 300
check "sipp-backend-outbound-cancel-trying -> sipp-callee-cancel -set no180 1: exits 0" [ $? = 0 ]
uas_rc "$UPID"
check "sipp-callee-cancel -set no180 1: exits 0" [ "$RC" = 0 ]

# The callee's own checks fail the call: a backend altered to break them
sed 's/CSeq: 2 BYE/CSeq: 1 BYE/' "$HERE/sipp-backend-outbound.xml" >"$W/bad-bye-cseq.xml"
sed 's/CSeq: 1 ACK/CSeq: 2 ACK/' "$HERE/sipp-backend-outbound.xml" >"$W/bad-ack-cseq.xml"
start_uas neg-bye "$HERE/sipp-callee-uas.xml" u1 -m 1 -timeout 30s -timeout_error -default_behaviors abortunexp
sipp_uac neg-bye-uac "$W/bad-bye-cseq.xml" u1 "$UPORT" -s +442079460000
uas_rc "$UPID"
check "sipp-callee-uas: a BYE with CSeq 1 after INVITE CSeq 1 fails the call" \
    sh -c "[ $RC = 1 ] && grep -q 'test \"bye_n:1.000000 > inv_n:1.000000\" with check_it failed' '$W/neg-bye.err.log'"
start_uas neg-ack "$HERE/sipp-callee-uas.xml" u1 -m 1 -timeout 30s -timeout_error -default_behaviors abortunexp
sipp_uac neg-ack-uac "$W/bad-ack-cseq.xml" u1 "$UPORT" -s +442079460000
uas_rc "$UPID"
check "sipp-callee-uas: an ACK with another CSeq than the INVITE's fails the call" \
    sh -c "[ $RC = 1 ] && grep -q 'test \"ack_n:2.000000 == inv_n:1.000000\" with check_it failed' '$W/neg-ack.err.log'"
start_uas neg-ruri "$HERE/sipp-callee-uas.xml" u1 -m 1 -timeout 30s -timeout_error -default_behaviors abortunexp \
    -set expect_ruri_user 442079460000
sipp_uac neg-ruri-uac "$HERE/sipp-backend-outbound.xml" u1 "$UPORT" -s +442079460000
uas_rc "$UPID"
check "sipp-callee-uas: -set expect_ruri_user mismatch fails the call" \
    sh -c "[ $RC = 1 ] && grep -q 'strcmp ruri_user' '$W/neg-ruri.err.log'"

# ---- the load scenarios of benches/outbound_load.rs, one call each ----
start_uas ld-callee "$HERE/sipp-backend-load.xml" u1 -m 1 -timeout 30s -timeout_error -default_behaviors abortunexp
sipp_uac ld-backend "$HERE/sipp-backend-outbound-load.xml" u1 "$UPORT" -s +442079460000
check "sipp-backend-outbound-load -> sipp-backend-load: exits 0" [ $? = 0 ]
uas_rc "$UPID"
check "sipp-backend-load as the callee: exits 0" [ "$RC" = 0 ]
start_uas ld-carrier "$HERE/sipp-carrier-challenge-load.xml" u1 -m 1 -timeout 30s -timeout_error -default_behaviors abortunexp
sipp_uac ld-auth "$HERE/sipp-uac-auth-call.xml" u1 "$UPORT" -s +442079460000 "${AUTH[@]}"
check "sipp-uac-auth-call -> sipp-carrier-challenge-load: 407 answered, call completes" [ $? = 0 ]
check "sipp-carrier-challenge-load: the UAC logged CHALLENGED cseq=1 and BYE-OK cseq=3" \
    sh -c "grep -q '^CHALLENGED cseq=1 ' '$W/ld-auth.log.log' && grep -q '^BYE-OK cseq=3 ' '$W/ld-auth.log.log'"
uas_rc "$UPID"
check "sipp-carrier-challenge-load: exits 0" [ "$RC" = 0 ]

# ---- stop the Kamailios: SIGTERM to the main process ends all of them ----
for name in "${KNAMES[@]}"; do
    kill -TERM "$(cat "$W/$name/kamailio.pid")" 2>/dev/null
done
sleep 1
left=0
for name in "${KNAMES[@]}"; do [ -e "$W/$name/kamailio.pid" ] && left=1; done
check "kamailio stops on SIGTERM (pid files removed, ${#KNAMES[@]} instances)" [ $left = 0 ]

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
