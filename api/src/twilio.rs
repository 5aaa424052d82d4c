//! Twilio-compatible naming (issue 16): the `callSid` dialtone puts in a voice agent's
//! `start` message is made from the call's API id and read back by the Twilio-compatible
//! call update endpoint, so bots written for Twilio (Pipecat's serializer, for one) can end
//! their call through their own code path.

/// The Twilio-style `CA…` sid (32 hex digits) of the API call `id` (`call_<16 hex>`): the
/// id's digits twice. `None` for any other id.
pub fn call_sid(id: &str) -> Option<String> {
    let hex = id.strip_prefix("call_").filter(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))?;
    let hex = hex.to_ascii_lowercase();
    Some(format!("CA{hex}{hex}"))
}

/// The API call id a `CA…` sid names (the inverse of [`call_sid`]); `None` for a sid
/// dialtone did not make.
pub fn call_id_of(sid: &str) -> Option<String> {
    let hex = sid.strip_prefix("CA").filter(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))?;
    let (a, b) = hex.split_at(16);
    a.eq_ignore_ascii_case(b).then(|| format!("call_{}", a.to_ascii_lowercase()))
}

/// A time (Unix ms) as Twilio writes it (RFC 2822): `Tue, 10 Aug 2010 08:02:17 +0000`.
pub fn rfc2822(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        WEEKDAYS[days.rem_euclid(7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `application/x-www-form-urlencoded` pairs (`+` is a space, `%XX` a byte).
pub fn form(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                        Ok(v) => {
                            out.push(v);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_go_there_and_back() {
        let sid = call_sid("call_5f0c2a9d1e3b4c7a").unwrap();
        assert_eq!(sid, "CA5f0c2a9d1e3b4c7a5f0c2a9d1e3b4c7a");
        assert_eq!(call_id_of(&sid).as_deref(), Some("call_5f0c2a9d1e3b4c7a"));
        assert_eq!(call_id_of("CA00000000000000000000000000000001"), None, "not one of ours");
        assert_eq!(call_sid("call-7"), None);
    }

    #[test]
    fn times_and_forms_as_twilio_writes_them() {
        // Twilio's documented example date.
        assert_eq!(rfc2822(1_281_427_337_000), "Tue, 10 Aug 2010 08:02:17 +0000");
        assert_eq!(
            form(b"Status=completed&Twiml=%3CResponse%2F%3E&X=a+b&Y=%"),
            [("Status", "completed"), ("Twiml", "<Response/>"), ("X", "a b"), ("Y", "%")]
                .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }
}
