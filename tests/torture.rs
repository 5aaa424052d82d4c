//! RFC 4475 torture fixtures: one test case per file under `fixtures/sip/` (placeholder
//! harness, filled in by the parser work).
fn main() {}
