//! `dialtone call --device`: the sound card through cpal/ALSA.
//!
//! CI machines have no sound card, so the tests give ALSA one made of files: an
//! `~/.asoundrc` (HOME points at a temp dir) whose default PCM captures from a raw file
//! holding a tone and plays into another raw file (ALSA's `file` plugin over `null`). The
//! null device does not pace in real time, so the microphone's "file" is a FIFO the test
//! writes in real time (20 ms of tone every 20 ms); the speaker's side runs free and its
//! file holds the call's audio among silence. The tone goes microphone → call →
//! dialtone's echo → speaker, and is looked for in the speaker's file.

#![cfg(feature = "device")]

mod common;

use common::*;
use dialtone_media::resample::goertzel_power;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Makes `path` a FIFO and feeds it a tone in real time for up to `secs`, from a thread
/// that gives up when nobody opens the FIFO or reads from it.
fn paced_tone_fifo(path: &Path, freq: f64, secs: f64) -> std::thread::JoinHandle<()> {
    use std::io::Write;
    let st = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(st.success());
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let t0 = std::time::Instant::now();
        let mut frame = 0usize;
        // ALSA opens the file more than once (cpal probes the device, then opens the
        // stream): each time the reader goes away, open again. Opening blocks until
        // dialtone opens the microphone; if it never does, this thread waits until the test
        // process exits.
        while frame < (secs * 50.0) as usize {
            let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) else { return };
            while frame < (secs * 50.0) as usize {
                let bytes: Vec<u8> = (frame * 160..(frame + 1) * 160)
                    .flat_map(|i| {
                        let v = (8000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / 8000.0).sin()) as i16;
                        v.to_le_bytes()
                    })
                    .collect();
                frame += 1;
                if f.write_all(&bytes).is_err() {
                    break;
                }
                let due = t0 + Duration::from_millis(20 * frame as u64);
                if let Some(w) = due.checked_duration_since(std::time::Instant::now()) {
                    std::thread::sleep(w);
                }
            }
        }
    })
}

fn call_with_home(home: &Path, port: u16) -> std::process::Output {
    let mut call = Command::new(dialtone_bin());
    call.arg("call")
        .arg(format!("sip:echo@127.0.0.1:{port}"))
        .args(["--device", "--duration", "2"])
        .env("HOME", home)
        .env("DIALTONE_SIP_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("DIALTONE_RTP_PORTS", "46100-46199");
    run_bounded(call, Duration::from_secs(20))
}

#[test]
fn the_microphone_reaches_the_call_and_the_call_reaches_the_speaker() {
    assert!(Path::new("/usr/share/alsa/alsa.conf").exists(), "ALSA's configuration is missing (libasound2)");
    let dir = temp_dir("device");
    let (mic, spk) = (dir.join("mic.raw"), dir.join("speaker.raw"));
    let feeder = paced_tone_fifo(&mic, 500.0, 6.0);
    std::fs::write(
        dir.join(".asoundrc"),
        format!(
            "pcm.micfile {{ type file slave.pcm \"null\" file \"/dev/null\" infile \"{}\" format \"raw\" }}\n\
             pcm.spkfile {{ type file slave.pcm \"null\" file \"{}\" format \"raw\" }}\n\
             pcm.!default {{ type asym\n\
               capture.pcm {{ type plug slave {{ pcm \"micfile\" format S16_LE rate 8000 channels 1 }} }}\n\
               playback.pcm {{ type plug slave {{ pcm \"spkfile\" format S16_LE rate 8000 channels 1 }} }} }}\n",
            mic.display(),
            spk.display()
        ),
    )
    .unwrap();
    let d = Dialtone::serve("device-echo", &[("DIALTONE_RTP_PORTS", "46000-46099")]);
    let out = call_with_home(&dir, d.port);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("call: sound card:"), "{stderr}");
    drop(feeder);
    let raw = std::fs::read(&spk).expect("the speaker's file");
    let pcm: Vec<i16> = raw.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    // 20 ms windows where the echoed 500 Hz tone dominates.
    let toned = pcm
        .chunks_exact(160)
        .filter(|w| {
            let on = goertzel_power(w, 8000, 500.0);
            on > 1.0e6 && on > 50.0 * goertzel_power(w, 8000, 1300.0)
        })
        .count();
    assert!(toned >= 25, "only {toned} windows of the echoed tone reached the speaker\n{stderr}");
}

#[test]
fn no_sound_card_is_a_clear_error_before_dialling() {
    let dir = temp_dir("nodevice");
    // The default PCM is a card that does not exist.
    std::fs::write(dir.join(".asoundrc"), "pcm.!default { type hw card 9 }\nctl.!default { type hw card 9 }\n")
        .unwrap();
    let d = Dialtone::serve("nodevice", &[("DIALTONE_RTP_PORTS", "46200-46299")]);
    let out = call_with_home(&dir, d.port);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--device: cannot open the") && stderr.contains("no sound card"), "{stderr}");
    assert!(!stderr.contains("INVITE"), "it must not dial: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
