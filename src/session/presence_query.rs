//! Reading a subscription's presence list: the tracker the session feeds
//! when a subscriber asked for presence
//! ([`SubscribeOptions::with_presence`](super::SubscribeOptions::with_presence)).

use crate::engine::SubscriberId;
use crate::session::presence::Presence;
use crate::session::Session;

impl Session {
    /// The presence list of subscription `id`'s topic, when presence is
    /// tracked on it (some subscriber of the topic asked for it); `None` for
    /// an unknown or ended subscription. Read it after a
    /// [`PresenceEvent::Sync`](super::presence::PresenceEvent::Sync) to see
    /// the list that event announced; [`Presence::snapshot`] makes a copy to
    /// hand to other threads.
    pub fn presence(&self, id: SubscriberId) -> Option<&Presence> {
        let sub = self.subs.get(&id)?;
        self.topics.get(sub.topic)?.presence.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use crate::codec::{Frame, FrameRef};
    use crate::engine::SubscriberId;
    use crate::session::presence::PresenceEvent;
    use crate::session::{
        Event, JoinParams, Output, Session, SessionConfig, SubscribeOptions, SubscriptionEvent,
    };

    /// Drains the session, answering connects and joins; returns the
    /// presence events per subscriber and the join ref of the last join.
    fn drain(session: &mut Session, now: Instant) -> (Vec<(u64, PresenceEvent)>, Option<String>) {
        let mut presence = Vec::new();
        let mut join = None;
        while let Some(output) = session.poll_output() {
            match output {
                Output::Connect(request) => session.handle_connected(request.id, now),
                Output::Transmit(Frame::Text(text)) if text.contains("phx_join") => {
                    let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
                    let join_ref = frame[0].as_str().unwrap().to_owned();
                    let msg_ref = frame[1].as_str().unwrap();
                    let reply = format!(
                        r#"["{join_ref}","{msg_ref}","presence:lobby","phx_reply",{{"status":"ok","response":{{}}}}]"#
                    );
                    session.handle_frame(FrameRef::Text(&reply), now);
                    join = Some(join_ref);
                }
                Output::Event(Event::Subscription {
                    id,
                    event: SubscriptionEvent::Presence(event),
                }) => presence.push((id.0, event)),
                _ => {}
            }
        }
        (presence, join)
    }

    #[test]
    fn the_list_of_a_tracked_topic_is_readable_after_each_sync() {
        #[allow(clippy::disallowed_methods)] // the simulated clock's base
        let now = Instant::now();
        let mut session = Session::new(SessionConfig::new("ws://h/socket").with_seed(1), now)
            .expect("valid config");
        session.connect(now);
        let (alice, plain) = (SubscriberId(1), SubscriberId(2));
        session
            .subscribe(
                alice,
                "presence:lobby",
                SubscribeOptions::params(JoinParams::none()).with_presence(true),
                now,
            )
            .unwrap();
        let (_, join) = drain(&mut session, now);
        let join = join.expect("the join went out");
        assert!(session.presence(alice).is_some_and(|p| p.is_empty()));
        assert!(!session.presence(alice).unwrap().is_synced());

        let state = format!(
            r#"["{join}",null,"presence:lobby","presence_state",{{"alice":{{"metas":[{{"phx_ref":"A"}}]}}}}]"#
        );
        session.handle_frame(FrameRef::Text(&state), now);
        let (events, _) = drain(&mut session, now);
        assert!(matches!(events.last(), Some((1, PresenceEvent::Sync))));
        let list = session.presence(alice).unwrap().snapshot();
        assert!(list.is_synced());
        assert_eq!(list.keys().collect::<Vec<_>>(), ["alice"]);

        // A second subscriber of the topic reads the same list.
        session
            .subscribe(plain, "presence:lobby", JoinParams::none(), now)
            .unwrap();
        let _ = drain(&mut session, now);
        let diff = r#"[null,null,"presence:lobby","presence_diff",{"joins":{"bob":{"metas":[{"phx_ref":"B"}]}},"leaves":{"alice":{"metas":[{"phx_ref":"A"}]}}}]"#;
        session.handle_frame(FrameRef::Text(diff), now);
        let _ = drain(&mut session, now);
        for id in [alice, plain] {
            let keys: Vec<String> = session
                .presence(id)
                .unwrap()
                .iter()
                .map(|(key, _)| key.to_owned())
                .collect();
            assert_eq!(keys, ["bob"]);
        }

        assert!(session.unsubscribe(alice, now));
        assert!(session.presence(alice).is_none());
        assert!(session.presence(SubscriberId(99)).is_none());
    }

    #[test]
    fn topics_without_presence_have_no_list() {
        #[allow(clippy::disallowed_methods)] // the simulated clock's base
        let now = Instant::now();
        let mut session = Session::new(SessionConfig::new("ws://h/socket").with_seed(1), now)
            .expect("valid config");
        session.connect(now);
        session
            .subscribe(SubscriberId(1), "presence:lobby", JoinParams::none(), now)
            .unwrap();
        let _ = drain(&mut session, now);
        assert!(session.presence(SubscriberId(1)).is_none());
    }
}
