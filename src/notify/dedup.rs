//! Which events are news: one per state change, not one per retry (the rules are in the
//! module docs of [`super`]).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use super::{Event, ObjectRef, Reason};

/// Events that supersede one another. An object's health is one state (failing, or not),
/// so its failures and its recovery share a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Channel {
    Health,
    TokenExpiry,
    Prune,
    Source,
    Leadership,
}

/// The channel of `reason`; none for the reasons that are each news (drift corrections
/// are actions taken).
fn channel(reason: Reason) -> Option<Channel> {
    Some(match reason {
        Reason::ReconcileFailed | Reason::TokenRenewalFailed | Reason::Recovered => Channel::Health,
        Reason::TokenExpiring => Channel::TokenExpiry,
        Reason::PruneRefused => Channel::Prune,
        Reason::RevisionApplied | Reason::SourceFailed => Channel::Source,
        Reason::LeadershipGained | Reason::LeadershipLost => Channel::Leadership,
        Reason::DriftCorrected => return None,
    })
}

/// What makes two events the same news: reason, message, fields and revision. A 64-bit
/// hash rather than the text, so that a thousand failing objects cost little memory; a
/// collision would only suppress one event.
fn fingerprint(event: &Event) -> u64 {
    let mut h = DefaultHasher::new();
    event.reason.hash(&mut h);
    event.message.hash(&mut h);
    event.fields.hash(&mut h);
    event.revision.hash(&mut h);
    h.finish()
}

/// The last event let through, per object (or none) and channel.
#[derive(Debug, Default)]
pub(super) struct Dedup {
    last: HashMap<(Option<ObjectRef>, Channel), u64>,
}

impl Dedup {
    /// Whether `event` is news; if it is, it becomes the last of its channel.
    pub(super) fn admit(&mut self, event: &Event) -> bool {
        let Some(channel) = channel(event.reason) else {
            return true;
        };
        let object = match channel {
            Channel::Prune => None,
            _ => event.object.clone(),
        };
        let key = (object, channel);
        if event.reason == Reason::Recovered {
            // The health channel holds an entry only while the object is failing: a
            // recovery is news then, and starts the channel over.
            return self.last.remove(&key).is_some();
        }
        let print = fingerprint(event);
        if self.last.get(&key) == Some(&print) {
            return false;
        }
        self.last.insert(key, print);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Severity;

    fn on(reason: Reason, kind: &str, name: &str, message: &str) -> Event {
        Event::new(reason, Severity::Info, message).object(kind, name)
    }

    fn global(reason: Reason, message: &str) -> Event {
        Event::new(reason, Severity::Info, message)
    }

    fn applied(revision: &str) -> Event {
        global(Reason::RevisionApplied, "applied").revision(Some(revision.into()))
    }

    #[test]
    fn each_channel_lets_through_one_event_per_state_change() {
        use Reason::*;
        // (what the case shows, events in order with whether each is news)
        let cases: Vec<(&str, Vec<(Event, bool)>)> = vec![
            (
                "failed → failed (same) is one event; failed → recovered → failed three",
                vec![
                    (on(ReconcileFailed, "Role", "r", "denied"), true),
                    (on(ReconcileFailed, "Role", "r", "denied"), false),
                    (on(Recovered, "Role", "r", "ok"), true),
                    (on(ReconcileFailed, "Role", "r", "denied"), true),
                ],
            ),
            (
                "a different failure is news",
                vec![
                    (on(ReconcileFailed, "Role", "r", "denied"), true),
                    (on(ReconcileFailed, "Role", "r", "throttled"), true),
                    (on(ReconcileFailed, "Role", "r", "denied"), true),
                ],
            ),
            (
                "a recovery without a failure before it, or twice, is not news",
                vec![
                    (on(Recovered, "Role", "r", "ok"), false),
                    (on(ReconcileFailed, "Role", "r", "denied"), true),
                    (on(Recovered, "Role", "r", "ok"), true),
                    (on(Recovered, "Role", "r", "ok again"), false),
                ],
            ),
            (
                "token renewal failures share the health channel",
                vec![
                    (on(TokenRenewalFailed, "Token", "t", "refused"), true),
                    (on(TokenRenewalFailed, "Token", "t", "refused"), false),
                    (on(ReconcileFailed, "Token", "t", "refused"), true),
                    (on(Recovered, "Token", "t", "renewed"), true),
                ],
            ),
            (
                "objects are independent; the kind matters as much as the name",
                vec![
                    (on(ReconcileFailed, "Role", "a", "denied"), true),
                    (on(ReconcileFailed, "Role", "b", "denied"), true),
                    (on(ReconcileFailed, "Secret", "a", "denied"), true),
                    (on(Recovered, "Role", "a", "ok"), true),
                    (on(ReconcileFailed, "Role", "b", "denied"), false),
                    (on(Recovered, "Role", "c", "ok"), false),
                ],
            ),
            (
                "token expiry is its own channel per object",
                vec![
                    (on(ReconcileFailed, "Token", "t", "x"), true),
                    (on(TokenExpiring, "Token", "t", "expires in 1h"), true),
                    (on(TokenExpiring, "Token", "t", "expires in 1h"), false),
                    (on(TokenExpiring, "Token", "u", "expires in 1h"), true),
                    (on(ReconcileFailed, "Token", "t", "x"), false),
                    (on(Recovered, "Token", "t", "ok"), true),
                    (on(TokenExpiring, "Token", "t", "expires in 1h"), false),
                    (on(TokenExpiring, "Token", "t", "expires in 5m"), true),
                ],
            ),
            (
                "prune refusals share one channel for all objects",
                vec![
                    (global(PruneRefused, "3 objects"), true),
                    (on(PruneRefused, "Role", "r", "3 objects"), false),
                    (global(PruneRefused, "4 objects"), true),
                    (global(PruneRefused, "3 objects"), true),
                ],
            ),
            (
                "the source: the same revision or failure again is not news",
                vec![
                    (applied("main@sha1:aa"), true),
                    (applied("main@sha1:aa"), false),
                    (global(SourceFailed, "fetch failed"), true),
                    (global(SourceFailed, "fetch failed"), false),
                    (applied("main@sha1:aa"), true),
                    (applied("main@sha1:bb"), true),
                    (
                        global(RevisionApplied, "applied again")
                            .revision(Some("main@sha1:bb".into())),
                        true,
                    ),
                ],
            ),
            (
                "leadership: gained → gained is one event",
                vec![
                    (global(LeadershipGained, "leader"), true),
                    (global(LeadershipGained, "leader"), false),
                    (global(LeadershipLost, "standby"), true),
                    (global(LeadershipLost, "standby"), false),
                    (global(LeadershipGained, "leader"), true),
                ],
            ),
            (
                "each drift correction is news, and leaves the health channel alone",
                vec![
                    (on(DriftCorrected, "Role", "r", "corrected"), true),
                    (on(DriftCorrected, "Role", "r", "corrected"), true),
                    (on(Recovered, "Role", "r", "ok"), false),
                ],
            ),
        ];
        for (case, events) in cases {
            let mut dedup = Dedup::default();
            for (i, (event, news)) in events.iter().enumerate() {
                assert_eq!(dedup.admit(event), *news, "{case}: event {i}: {event:?}");
            }
        }
    }

    #[test]
    fn the_fingerprint_is_reason_message_fields_and_revision() {
        let base = || {
            on(Reason::ReconcileFailed, "Role", "r", "denied")
                .fields(vec!["a".into(), "b".into()])
                .revision(Some("main@sha1:aa".into()))
        };
        // (what differs from the base event, the event, whether it is news after the base)
        let cases = [
            ("nothing", base(), false),
            (
                "the severity",
                {
                    let mut e = base();
                    e.severity = Severity::Error;
                    e
                },
                false,
            ),
            (
                "the reason",
                {
                    let mut e = base();
                    e.reason = Reason::TokenRenewalFailed;
                    e
                },
                true,
            ),
            (
                "the message",
                {
                    let mut e = base();
                    e.message = "denied!".into();
                    e
                },
                true,
            ),
            ("the fields", base().fields(vec!["a".into()]), true),
            ("the fields' split", base().fields(vec!["ab".into()]), true),
            (
                "the fields' order",
                base().fields(vec!["b".into(), "a".into()]),
                true,
            ),
            (
                "the revision",
                base().revision(Some("main@sha1:bb".into())),
                true,
            ),
            ("no revision", base().revision(None), true),
        ];
        for (differs, event, news) in cases {
            let mut dedup = Dedup::default();
            assert!(dedup.admit(&base()));
            assert_eq!(dedup.admit(&event), news, "differs in {differs}");
        }
    }
}
