//! The `agent_messages` target: see `targets.rs` (the body, shared with the stable replay test).
#![no_main]

#[path = "../targets.rs"]
#[allow(dead_code)]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::agent_messages(data));
