//! RFC 4475 (and RFC 5118) torture fixtures: one named test per file under
//! `fixtures/sip/<verdict>/*.sip`, run through the whole receive-side verdict of our UAS
//! ([`inspect_datagram`]). See `fixtures/sip/README.md` for what each directory means.
//!
//! - `parse/`: accepted, and parse → serialize → parse gives an equal message;
//! - `400/`, `505/`, `416/`, `420/`, `415/`, `406/`: rejected with that status (a 400's
//!   reason phrase names the fault, never the generic "Bad Request");
//! - `drop/`: silently dropped.
//!
//! `cargo test --test torture -- parse/` runs one directory; `--list` lists the cases.

use bytes::Bytes;
use dialtone_sip::parse_datagram;
use dialtone_sip::validate::{inspect_datagram, Policy, Verdict};
use libtest_mimic::{Arguments, Failed, Trial};
use std::path::{Path, PathBuf};

const VERDICTS: &[&str] = &["parse", "400", "505", "416", "420", "415", "406", "drop"];

fn main() {
    let args = Arguments::from_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sip");
    let mut trials = Vec::new();
    for verdict in VERDICTS {
        let dir = root.join(verdict);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "sip"))
            .collect();
        files.sort();
        for path in files {
            let file = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
            let verdict = *verdict;
            trials.push(Trial::test(format!("{verdict}/{file}"), move || run_case(verdict, &path)));
        }
    }
    if trials.is_empty() {
        eprintln!("no fixtures found under {}", root.display());
        std::process::exit(1);
    }
    libtest_mimic::run(&args, trials).exit();
}

fn run_case(verdict: &str, path: &Path) -> Result<(), Failed> {
    let raw = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let buf = Bytes::from(raw);
    let got = inspect_datagram(buf.clone(), &Policy::default());
    match verdict {
        "parse" => {
            if got != Verdict::Accept {
                return Err(format!("expected Accept, got {got:?}").into());
            }
            let first = parse_datagram(buf).map_err(|m| format!("parse failed: {:?}", m.error))?;
            let wire = first.to_bytes();
            let again = parse_datagram(wire.clone())
                .map_err(|m| format!("re-parse of the serialized message failed: {:?}", m.error))?;
            if again != first {
                return Err(format!(
                    "round trip changed the message\n--- first ---\n{first:#?}\n--- again ---\n{again:#?}\n--- wire ---\n{}",
                    String::from_utf8_lossy(&wire)
                )
                .into());
            }
            Ok(())
        }
        "drop" => match got {
            Verdict::Drop => Ok(()),
            other => Err(format!("expected Drop, got {other:?}").into()),
        },
        status => {
            let want: u16 = status.parse().map_err(|_| format!("unknown verdict directory {status}"))?;
            match got {
                Verdict::Reject(s, reason) if s == want => {
                    if s == 400 && reason.eq_ignore_ascii_case("Bad Request") {
                        return Err("400 with the generic reason phrase; it must name the fault".into());
                    }
                    Ok(())
                }
                other => Err(format!("expected Reject({want}, _), got {other:?}").into()),
            }
        }
    }
}
