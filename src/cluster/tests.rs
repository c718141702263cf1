//! The cluster's decisions on a virtual clock, with Redis's answers written by hand.

use std::time::{Duration, Instant};

use super::*;

/// The virtual clock's epoch; only tests create Instants from nothing.
#[allow(clippy::disallowed_methods)]
fn epoch() -> Instant {
    Instant::now()
}

fn settings(node: &str) -> Settings {
    Settings {
        redis: "redis://127.0.0.1:6379/0".into(),
        password: None,
        ca_file: None,
        node: node.into(),
        lease: Duration::from_secs(3),
        expected_nodes: 2,
        degraded_share: 0.5,
    }
}

fn requests(cluster: &mut Cluster) -> Vec<Request> {
    std::iter::from_fn(|| cluster.poll_request()).collect()
}

fn heartbeat(epoch: u64, boot: &str, alive: &[&str]) -> Reply {
    Reply::Heartbeat {
        epoch,
        rejoined: false,
        boot: boot.into(),
        alive: alive.iter().map(|n| n.to_string()).collect(),
        totals: vec![("lab".into(), 3)],
        vacant: Vec::new(),
    }
}

/// Connected, first heartbeat answered: trusted.
fn joined(node: &str, now: Instant) -> Cluster {
    let mut cluster = Cluster::new(settings(node), now);
    cluster.handle_reply(now, Reply::Connected);
    cluster.handle_timeout(now, Vec::new, |_| 0);
    assert_eq!(requests(&mut cluster), [Request::Heartbeat]);
    cluster.handle_reply(now, heartbeat(1, "boot-1", &[node]));
    assert!(cluster.is_ok(now));
    requests(&mut cluster);
    cluster
}

#[test]
fn a_call_asks_redis_when_it_answers_and_decides_alone_up_to_the_share_otherwise() {
    let now = epoch();
    let mut cluster = Cluster::new(settings("a"), now);
    // Not connected yet: degraded, half of max_channels = 4 each.
    assert!(!cluster.is_ok(now));
    assert_eq!(cluster.admit(now, "lab", 4, 8, 0), Admission::Local(true));
    assert_eq!(cluster.admit(now, "lab", 5, 8, 0), Admission::Local(false));
    assert_eq!(cluster.admit(now, "lab", 500, 0, 0), Admission::Local(true));
    assert!(
        requests(&mut cluster).is_empty(),
        "nothing asked of a Redis that is down"
    );

    let mut cluster = joined("a", now);
    assert_eq!(cluster.total("lab"), Some(3));
    let Admission::Asked(ticket) = cluster.admit(now, "lab", 5, 8, 2) else {
        panic!("asked");
    };
    assert_eq!(
        requests(&mut cluster),
        [Request::Claim {
            ticket,
            trunk: "lab".into(),
            count: 5,
            max: 8,
            rate: 2
        }]
    );
    let answer = Reply::Claimed {
        ticket,
        verdict: Verdict::Busy,
    };
    let answered = now + Duration::from_micros(300);
    assert_eq!(
        cluster.handle_reply(answered, answer),
        Some((ticket, Verdict::Busy))
    );
    // What the call waited for Redis, for trunkd_cluster_claim_seconds.
    assert_eq!(cluster.claim_times().count(), 1);
    assert_eq!(cluster.claim_times().sum(), Duration::from_micros(300));
    // An answer to nothing (late, after a timeout) is nobody's.
    let late = Reply::Claimed {
        ticket,
        verdict: Verdict::Granted,
    };
    assert_eq!(cluster.handle_reply(now, late), None);
}

#[test]
fn a_claim_unanswered_within_the_timeout_or_lost_with_the_link_is_decided_alone() {
    let start = epoch();
    let mut cluster = joined("a", start);
    let Admission::Asked(first) = cluster.admit(start, "lab", 1, 2, 0) else {
        panic!("asked");
    };
    let later = start + Duration::from_millis(100);
    let Admission::Asked(second) = cluster.admit(later, "lab", 2, 2, 0) else {
        panic!("asked");
    };
    assert!(cluster.poll_timeout() <= Some(start + CLAIM_TIMEOUT));
    let just_before = start + CLAIM_TIMEOUT - Duration::from_millis(1);
    assert!(cluster.expired_claims(just_before).is_empty());
    assert_eq!(cluster.expired_claims(start + CLAIM_TIMEOUT), [first]);
    // The link drops: the other claim is lost and decided at once.
    cluster.handle_reply(
        later,
        Reply::Disconnected {
            why: "reset".into(),
        },
    );
    assert_eq!(cluster.expired_claims(later), [second]);
    assert!(!cluster.is_ok(later));
    assert_eq!(cluster.admit(later, "lab", 1, 2, 0), Admission::Local(true));
}

#[test]
fn counts_are_written_back_when_they_change_and_again_after_a_reconnect() {
    let start = epoch();
    let mut cluster = joined("a", start);
    // The heartbeat's rebuild writes every trunk with channels held.
    let held = [("lab", 2), ("idle", 0)];
    let at = start + REPORT_EVERY;
    cluster.handle_timeout(at, || held.to_vec(), |id| if id == "lab" { 2 } else { 0 });
    assert_eq!(
        requests(&mut cluster),
        [Request::Report {
            trunk: "lab".into(),
            count: 2
        }]
    );
    // Nothing changed: nothing written.
    let at = at + REPORT_EVERY;
    cluster.handle_timeout(at, Vec::new, |_| 2);
    assert!(requests(&mut cluster).is_empty());
    // A call ended.
    let at = at + REPORT_EVERY;
    cluster.handle_timeout(at, Vec::new, |_| 1);
    assert_eq!(
        requests(&mut cluster),
        [Request::Report {
            trunk: "lab".into(),
            count: 1
        }]
    );
    // Down, a call ends meanwhile, back: the count is written again once trusted.
    cluster.handle_reply(at, Reply::Disconnected { why: "gone".into() });
    let at = at + REPORT_EVERY;
    cluster.handle_timeout(at, Vec::new, |_| 0);
    assert!(requests(&mut cluster).is_empty(), "nothing sent while down");
    cluster.handle_reply(at, Reply::Connected);
    cluster.handle_timeout(at, Vec::new, |_| 0);
    assert_eq!(requests(&mut cluster), [Request::Heartbeat]);
    cluster.handle_reply(at, heartbeat(1, "boot-1", &["a"]));
    cluster.handle_timeout(at, Vec::new, |_| 0);
    assert_eq!(
        requests(&mut cluster),
        [Request::Report {
            trunk: "lab".into(),
            count: 0
        }]
    );
}

#[test]
fn redis_that_lost_its_data_is_trusted_only_a_lease_later() {
    let start = epoch();
    let mut cluster = joined("a", start);
    cluster.handle_reply(start, Reply::Disconnected { why: "gone".into() });
    let back = start + Duration::from_secs(1);
    cluster.handle_reply(back, Reply::Connected);
    cluster.handle_timeout(back, Vec::new, |_| 0);
    requests(&mut cluster);
    cluster.handle_reply(back, heartbeat(7, "boot-2", &["a"]));
    assert!(
        !cluster.is_ok(back),
        "the other hosts have not written theirs"
    );
    assert_eq!(cluster.admit(back, "lab", 2, 2, 0), Admission::Local(false));
    let lease = settings("a").lease;
    assert!(cluster.is_ok(back + lease));
}

#[test]
fn a_trunk_is_asked_for_unless_a_live_host_holds_it_and_taken_over_when_it_dies() {
    let start = epoch();
    let mut cluster = joined("b", start);
    cluster.set_registering(["lab", "other"].into_iter());
    let asked = requests(&mut cluster);
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked.contains(&Request::Acquire {
        trunk: "lab".into(),
        epoch: 1
    }));
    let held_by_a = Reply::Acquired {
        trunk: "lab".into(),
        holder: "a".into(),
    };
    cluster.handle_reply(start, held_by_a);
    let ours = Reply::Acquired {
        trunk: "other".into(),
        holder: "b".into(),
    };
    cluster.handle_reply(start, ours);
    assert!(!cluster.is_registrant("lab"));
    assert_eq!(cluster.registrant("lab"), Some("a"));
    assert!(cluster.is_registrant("other"));
    assert_eq!(
        cluster.poll_change(),
        Some(RegistrantChange {
            trunk: "other".into(),
            mine: true,
            holder: "b".into()
        })
    );
    assert_eq!(cluster.poll_change(), None);

    // a alive: nobody asks again.
    let beat = start + Duration::from_secs(1);
    cluster.handle_timeout(beat, Vec::new, |_| 0);
    requests(&mut cluster);
    cluster.handle_reply(beat, heartbeat(1, "boot-1", &["a", "b"]));
    assert!(requests(&mut cluster).is_empty());
    // a is gone from the live hosts: b asks for lab.
    let beat = beat + Duration::from_secs(1);
    cluster.handle_timeout(beat, Vec::new, |_| 0);
    requests(&mut cluster);
    cluster.handle_reply(beat, heartbeat(1, "boot-1", &["b"]));
    assert_eq!(
        requests(&mut cluster),
        [Request::Acquire {
            trunk: "lab".into(),
            epoch: 1
        }]
    );
}

#[test]
fn after_redis_lost_its_data_the_holder_claims_first_and_the_others_wait_a_lease() {
    let start = epoch();
    let mut holder = joined("a", start);
    let mut other = joined("b", start);
    for cluster in [&mut holder, &mut other] {
        cluster.set_registering(["lab"].into_iter());
        requests(cluster);
        let reply = Reply::Acquired {
            trunk: "lab".into(),
            holder: "a".into(),
        };
        cluster.handle_reply(start, reply);
    }
    assert!(holder.is_registrant("lab"));
    assert!(holder.poll_change().is_some_and(|change| change.mine));
    // Redis restarts empty: both reconnect and see a new boot id, and neither lists a.
    let back = start + Duration::from_secs(2);
    for cluster in [&mut holder, &mut other] {
        cluster.handle_reply(start, Reply::Disconnected { why: "gone".into() });
        cluster.handle_reply(back, Reply::Connected);
        cluster.handle_timeout(back, Vec::new, |_| 0);
        requests(cluster);
    }
    let mut rejoined = heartbeat(5, "boot-2", &["a"]);
    if let Reply::Heartbeat { rejoined: flag, .. } = &mut rejoined {
        *flag = true;
    }
    holder.handle_reply(back, rejoined);
    assert_eq!(
        requests(&mut holder),
        [Request::Acquire {
            trunk: "lab".into(),
            epoch: 5
        }]
    );
    assert!(holder.is_registrant("lab"), "still the registrant");
    // Its REGISTERs wait for the answer under the new epoch (the fencing token)...
    assert_eq!(holder.poll_fence(), Some(("lab".into(), true)));
    let confirmed = Reply::Acquired {
        trunk: "lab".into(),
        holder: "a".into(),
    };
    holder.handle_reply(back, confirmed);
    // ...and go again once Redis confirms it.
    assert_eq!(holder.poll_fence(), Some(("lab".into(), false)));
    assert_eq!(holder.poll_change(), None, "no change of registrant");
    other.handle_reply(back, heartbeat(6, "boot-2", &["b"]));
    assert!(
        requests(&mut other).is_empty(),
        "b waits for a to come back"
    );
    // A lease later a has not claimed it back (it is gone): b asks at its heartbeat.
    let later = back + settings("b").lease;
    other.handle_timeout(later, Vec::new, |_| 0);
    requests(&mut other);
    other.handle_reply(later, heartbeat(6, "boot-2", &["b"]));
    assert_eq!(
        requests(&mut other),
        [Request::Acquire {
            trunk: "lab".into(),
            epoch: 6
        }]
    );
}

#[test]
fn a_planned_shutdown_resigns_then_leaves() {
    let start = epoch();
    let mut cluster = joined("a", start);
    cluster.set_registering(["lab"].into_iter());
    requests(&mut cluster);
    let reply = Reply::Acquired {
        trunk: "lab".into(),
        holder: "a".into(),
    };
    cluster.handle_reply(start, reply);
    cluster.resign_all();
    assert_eq!(
        requests(&mut cluster),
        [Request::Resign {
            trunk: "lab".into()
        }]
    );
    assert!(!cluster.is_registrant("lab"));
    // While calls drain, the lease is renewed and calls still ask (their channels count
    // until the host leaves), but no registration is taken again.
    let draining = start + Duration::from_secs(5);
    cluster.handle_timeout(draining, Vec::new, |_| 0);
    let requests_now = requests(&mut cluster);
    assert!(
        requests_now.contains(&Request::Heartbeat),
        "{requests_now:?}"
    );
    cluster.handle_reply(draining, heartbeat(1, "boot-1", &["a"]));
    assert!(
        requests(&mut cluster)
            .iter()
            .all(|r| !matches!(r, Request::Acquire { .. })),
        "no registration taken again"
    );
    assert!(matches!(
        cluster.admit(draining, "lab", 1, 2, 0),
        Admission::Asked(_)
    ));
    requests(&mut cluster);
    cluster.leave();
    // Left: calls decide alone.
    assert!(matches!(
        cluster.admit(draining, "lab", 1, 2, 0),
        Admission::Local(true)
    ));
    assert_eq!(
        requests(&mut cluster),
        [Request::Leave { held: Vec::new() }]
    );
    assert!(!cluster.has_left());
    cluster.handle_reply(start, Reply::Left);
    assert!(cluster.has_left());
}
