//! Calls in progress at shutdown (`[daemon] shutdown_drain`): new calls get 503, those in
//! progress end through trunkd, and the stop comes once the last BYE is answered, after
//! [`SETTLE`] at most, or when the drain is over.

use super::*;
use crate::control::shutdown::{Notice, SETTLE};

const DRAIN: Duration = Duration::from_secs(30);

fn draining(now: Instant) -> Control {
    let text = CONFIG.replace(
        "max_call_duration = \"10m\"",
        "max_call_duration = \"10m\"\nshutdown_drain = \"30s\"",
    );
    control(&text, now)
}

/// Call `call` set up and answered by the backend.
fn answered(control: &mut Control, now: Instant, call: &str) {
    sent(control);
    receive(control, now, CARRIER, &invite(call));
    let forwarded = sent(control)[1].2.clone();
    receive(control, now, BACKEND, &answer(&forwarded, 200, "OK"));
    sent(control);
}

fn shutdown_notices(control: &mut Control) -> Vec<Notice> {
    drain_events(control)
        .into_iter()
        .filter_map(|event| match event {
            Event::Shutdown(notice) => Some(notice),
            _ => None,
        })
        .collect()
}

/// Runs every timer until the control path has stopped; the instant it did.
fn run_until_stopped(control: &mut Control, limit: Instant) -> Instant {
    loop {
        let now = control.poll_timeout();
        assert!(now <= limit, "not stopped by {limit:?}");
        control.handle_timeout(now);
        sent(control);
        if control.is_stopped() {
            return now;
        }
    }
}

#[test]
fn a_drain_refuses_new_calls_and_stops_when_the_last_bye_is_answered() {
    let t0 = epoch();
    let mut control = draining(t0);
    answered(&mut control, t0, "d");
    drain_events(&mut control);
    let stop = t0 + Duration::from_secs(1);
    control.shutdown(stop);
    assert_eq!(
        shutdown_notices(&mut control),
        [Notice::Draining {
            calls: 1,
            drain: DRAIN,
            stop_within: DRAIN + crate::control::shutdown::UNREGISTER_DEADLINE
        }]
    );
    assert!(!control.is_stopped());
    let refused = receive(&mut control, stop, CARRIER, &invite("late")).unwrap();
    assert!(
        refused.starts_with("SIP/2.0 503 Shutting Down\r\n"),
        "{refused}"
    );

    // The carrier hangs up; the stop waits for the backend's 200 to pass back.
    let ended = stop + Duration::from_secs(10);
    receive(
        &mut control,
        ended,
        CARRIER,
        &carrier_bye("d", "b1", "bye-d"),
    );
    let bye = sent(&mut control).remove(0);
    assert_eq!(bye.1, "BYE sip:10.0.0.9:5080 SIP/2.0");
    assert_eq!(control.active_calls(), 0);
    assert!(!control.is_stopped(), "the BYE's answer is still to pass");
    let answered_at = ended + Duration::from_millis(80);
    control.handle_timeout(answered_at - Duration::from_millis(1));
    assert!(!control.is_stopped());
    receive(
        &mut control,
        answered_at,
        BACKEND,
        &answer_in_dialog(&bye.2, 200, "OK"),
    );
    assert!(control.is_stopped());
    let relayed = sent(&mut control);
    assert_eq!(
        (relayed[0].0, relayed[0].1.as_str()),
        (addr(CARRIER), "SIP/2.0 200 OK"),
        "queued for the shell to send before it exits"
    );
    assert!(shutdown_notices(&mut control).is_empty());
}

/// The backend never answers the last BYE: the stop comes [`SETTLE`] after the call
/// ended, the BYE retransmitted meanwhile.
#[test]
fn an_unanswered_last_bye_holds_the_stop_for_settle() {
    let t0 = epoch();
    let mut control = draining(t0);
    answered(&mut control, t0, "s");
    control.shutdown(t0);
    let ended = t0 + Duration::from_secs(3);
    receive(
        &mut control,
        ended,
        CARRIER,
        &carrier_bye("s", "b1", "bye-s"),
    );
    sent(&mut control);
    assert_eq!(run_until_stopped(&mut control, t0 + DRAIN), ended + SETTLE);
    assert_eq!(shutdown_notices(&mut control).len(), 1, "only draining");
}

#[test]
fn calls_outlasting_the_drain_are_cut_off_at_its_end() {
    let t0 = epoch();
    let mut control = draining(t0);
    answered(&mut control, t0, "x");
    answered(&mut control, t0, "y");
    drain_events(&mut control);
    control.shutdown(t0);
    shutdown_notices(&mut control);
    receive(&mut control, t0, CARRIER, &carrier_bye("y", "b1", "bye-y"));
    let limit = t0 + DRAIN + SETTLE;
    assert_eq!(run_until_stopped(&mut control, limit), t0 + DRAIN);
    assert_eq!(control.active_calls(), 1);
    let cut_off = shutdown_notices(&mut control);
    assert_eq!(cut_off, [Notice::DrainOver { calls: 1 }]);
    assert_eq!(
        cut_off[0].to_string(),
        "shutdown_drain is over with 1 calls in progress; stopping anyway"
    );
}

/// `shutdown_drain = 0` (the default): calls in progress do not hold the stop.
#[test]
fn without_a_drain_calls_in_progress_do_not_hold_the_stop() {
    let t0 = epoch();
    let mut control = control(CONFIG, t0);
    answered(&mut control, t0, "n");
    drain_events(&mut control);
    control.shutdown(t0);
    assert!(control.is_stopped());
    assert_eq!(control.active_calls(), 1);
    assert!(shutdown_notices(&mut control).is_empty());
}

/// With `[cluster]`: an admitted INVITE waits for Redis's answer; a stop that begins
/// meanwhile refuses it as the hot path now would (503 Shutting Down), not with the
/// channel Redis granted, and a granted one goes on to the backend.
#[test]
fn an_invite_waiting_for_its_cluster_channel_goes_on_or_is_refused_by_a_stop() {
    use crate::cluster::{Reply, Verdict};
    let t0 = epoch();
    let text =
        format!("{CONFIG}\n[cluster]\nredis = \"redis://127.0.0.1:6379\"\nnode = \"edge\"\n");
    let mut control = control(&text, t0);
    join_cluster(&mut control, t0, "edge");
    sent(&mut control);

    receive(&mut control, t0, CARRIER, &invite("granted"));
    assert!(
        sent(&mut control).is_empty(),
        "nothing before Redis answers"
    );
    let ticket = claim_ticket(&mut control);
    let granted = Reply::Claimed {
        ticket,
        verdict: Verdict::Granted,
    };
    control.handle_cluster(t0, granted);
    let out = sent(&mut control);
    assert_eq!(out[0].1, "SIP/2.0 100 Trying", "{out:#?}");
    assert_eq!(out[1].0, addr(BACKEND));

    receive(&mut control, t0, CARRIER, &invite("stopped"));
    let ticket = claim_ticket(&mut control);
    control.shutdown(t0);
    let granted = Reply::Claimed {
        ticket,
        verdict: Verdict::Granted,
    };
    control.handle_cluster(t0, granted);
    let out = sent(&mut control);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].0, addr(CARRIER));
    assert_eq!(out[0].1, "SIP/2.0 503 Shutting Down");
    assert_eq!(channels(&control), 1, "the granted call's only");
}
