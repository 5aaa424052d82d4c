//! Placeholder; the real bench compares our parser with rsip.
fn main() {}
