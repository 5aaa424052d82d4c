//! Issue 17's acceptance: the web console driven in headless Chromium.

mod common;

use common::browser::Browser;
use common::*;
use std::time::Duration;

#[test]
fn console_page_loads() {
    let http = free_port();
    let d = Dialtone::serve("console-smoke", &[("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http}"))]);
    assert!(common::http::wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    let mut b = Browser::launch();
    b.goto(&format!("http://127.0.0.1:{http}/"));
    let title = b.eval("document.title");
    println!("title {title}; text {}", b.text());
    b.assert_no_problems("the console");
}
