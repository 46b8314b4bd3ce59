//! The server side of the benchmark: `FakeTransport.send` of
//! `benches/phoenix-js/fake-transport.mjs`, line for line, so both clients
//! are answered with the same frames built the same way.

/// Acknowledges joins, leaves and heartbeats. Replies queue in `inbox` until
/// the driver delivers them, as a socket never answers inside a send.
#[derive(Debug, Default)]
pub struct FakeServer {
    pub inbox: Vec<String>,
}

impl FakeServer {
    /// A frame the client sent. Frames are V2 arrays
    /// `[join_ref, ref, topic, event, payload]` and the topics here never
    /// contain commas or quotes, so the first four JSON tokens are split off
    /// and spliced into the reply verbatim; anything unexpected panics.
    pub fn receive(&mut self, frame: &str) {
        let Some(body) = frame.strip_prefix('[') else {
            panic!("fake server: not a V2 JSON frame: {frame}");
        };
        let mut tokens = body.splitn(5, ',');
        let (Some(join_ref), Some(msg_ref), Some(topic), Some(event)) =
            (tokens.next(), tokens.next(), tokens.next(), tokens.next())
        else {
            panic!("fake server: not a V2 JSON frame: {frame}");
        };
        match event {
            r#""phx_join""# => self.inbox.push(ok_reply(join_ref, msg_ref, topic)),
            r#""phx_leave""# => {
                // Like Phoenix.Socket: ack the leave, then report the channel closed.
                self.inbox.push(ok_reply(join_ref, msg_ref, topic));
                self.inbox
                    .push(splice(&[join_ref, join_ref, topic], r#""phx_close",{}]"#));
            }
            r#""heartbeat""# => self.inbox.push(ok_reply("null", msg_ref, topic)),
            _ => panic!("fake server: unexpected client frame {frame}"),
        }
    }
}

/// Arguments are JSON tokens taken verbatim from the client's frame.
fn ok_reply(join_ref: &str, msg_ref: &str, topic: &str) -> String {
    splice(
        &[join_ref, msg_ref, topic],
        r#""phx_reply",{"status":"ok","response":{}}]"#,
    )
}

/// `[` + the tokens, each followed by a comma, + `rest`, in one allocation
/// (V8 concatenates the script's template strings without copying; a
/// `format!` would spend more than that on growing its buffer).
fn splice(tokens: &[&str; 3], rest: &str) -> String {
    let len = 1 + tokens.iter().map(|t| t.len() + 1).sum::<usize>() + rest.len();
    let mut out = String::with_capacity(len);
    out.push('[');
    for token in tokens {
        out.push_str(token);
        out.push(',');
    }
    out.push_str(rest);
    out
}
