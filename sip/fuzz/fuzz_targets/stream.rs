//! A TCP byte stream through `StreamParser`: the first byte sets the chunk size, the rest
//! is fed in chunks of that size, draining every complete message after each chunk.
#![no_main]

use dialtone_sip::StreamParser;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let chunk = usize::from(first).max(1);
    let mut p = StreamParser::new();
    for part in rest.chunks(chunk) {
        p.push(part);
        loop {
            match p.next_message() {
                Ok(Some(m)) => {
                    let _ = m.to_bytes();
                }
                Ok(None) => break,
                // The connection would be closed.
                Err(_) => return,
            }
        }
    }
});
