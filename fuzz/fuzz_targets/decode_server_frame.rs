//! Any bytes a server may send, as a text or a binary frame, decode to a
//! message or a typed error: never a panic, never an allocation past the
//! frame-size limit. Run with `cargo +nightly fuzz run decode_server_frame`.
#![no_main]

use channel_registry::codec::{Codec, FrameRef};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let codec = Codec::new().with_max_frame_size(64 * 1024);
    if kind & 1 == 0 {
        let _ = codec.decode_server_frame(FrameRef::Binary(rest));
        let _ = codec.decode_client_frame(FrameRef::Binary(rest));
    } else if let Ok(text) = std::str::from_utf8(rest) {
        let _ = codec.decode_server_frame(FrameRef::Text(text));
        let _ = codec.decode_client_frame(FrameRef::Text(text));
    }
});
