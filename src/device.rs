//! The sound card (`dialtone call --device`): the microphone into the call, the call to
//! the speaker, through `cpal` (ALSA on Linux).
//!
//! The device's callbacks run on the audio thread: they only mix channels, convert the
//! rate and move samples through SPSC rings, never waiting on the media task (a full
//! ring drops, an empty one plays silence).

use anyhow::{anyhow, Context};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{SampleFormat, SizedSample, StreamConfig};
use dialtone_media::resample::Resampler;
use ringbuf::traits::{Consumer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};

/// Open microphone and speaker streams; they stop when this is dropped.
pub struct Device {
    _input: cpal::Stream,
    _output: cpal::Stream,
    /// What the device's names are, for the user.
    pub description: String,
}

/// The rings the media task uses: it pops the microphone and pushes the speaker.
pub struct DeviceRings {
    /// Microphone audio at the call's rate.
    pub mic: HeapCons<i16>,
    /// Speaker audio at the call's rate.
    pub speaker: HeapProd<i16>,
}

fn no_card(what: &str, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("--device: cannot open the {what}: {e} (no sound card? the call needs a microphone and a speaker)")
}

/// Opens the default microphone and speaker for a call at `rate` Hz.
pub fn open(rate: u32) -> anyhow::Result<(Device, DeviceRings)> {
    let host = cpal::default_host();
    let input = host.default_input_device().ok_or_else(|| no_card("microphone", "no input device"))?;
    let output = host.default_output_device().ok_or_else(|| no_card("speaker", "no output device"))?;
    let in_cfg = input.default_input_config().map_err(|e| no_card("microphone", e))?;
    let out_cfg = output.default_output_config().map_err(|e| no_card("speaker", e))?;
    // 400 ms of room each way: the callbacks and the 20 ms ticks never wait on each other.
    let ring = (rate as usize * 2 / 5).max(1024);
    let (mic_prod, mic_cons) = HeapRb::<i16>::new(ring).split();
    let (spk_prod, spk_cons) = HeapRb::<i16>::new(ring).split();
    let in_stream = match in_cfg.sample_format() {
        SampleFormat::F32 => build_input::<f32>(&input, in_cfg.config(), rate, mic_prod),
        SampleFormat::I16 => build_input::<i16>(&input, in_cfg.config(), rate, mic_prod),
        f => Err(anyhow!("microphone sample format {f} is not supported (f32 or i16 needed)")),
    }
    .map_err(|e| no_card("microphone", e))?;
    let out_stream = match out_cfg.sample_format() {
        SampleFormat::F32 => build_output::<f32>(&output, out_cfg.config(), rate, spk_cons),
        SampleFormat::I16 => build_output::<i16>(&output, out_cfg.config(), rate, spk_cons),
        f => Err(anyhow!("speaker sample format {f} is not supported (f32 or i16 needed)")),
    }
    .map_err(|e| no_card("speaker", e))?;
    in_stream.play().map_err(|e| no_card("microphone", e))?;
    out_stream.play().map_err(|e| no_card("speaker", e))?;
    let description = format!(
        "microphone {} Hz × {}, speaker {} Hz × {}",
        in_cfg.sample_rate(),
        in_cfg.channels(),
        out_cfg.sample_rate(),
        out_cfg.channels()
    );
    Ok((
        Device { _input: in_stream, _output: out_stream, description },
        DeviceRings { mic: mic_cons, speaker: spk_prod },
    ))
}

/// A sample as f32 in [-1, 1] and back.
trait Pcm: SizedSample + Send + 'static {
    fn to_f32(self) -> f32;
    fn from_f32(v: f32) -> Self;
}

impl Pcm for f32 {
    fn to_f32(self) -> f32 {
        self
    }
    fn from_f32(v: f32) -> f32 {
        v
    }
}

impl Pcm for i16 {
    fn to_f32(self) -> f32 {
        f32::from(self) / 32768.0
    }
    fn from_f32(v: f32) -> i16 {
        (v * 32767.0).clamp(-32768.0, 32767.0) as i16
    }
}

fn build_input<T: Pcm>(
    dev: &cpal::Device,
    cfg: StreamConfig,
    rate: u32,
    mut ring: HeapProd<i16>,
) -> anyhow::Result<cpal::Stream> {
    let channels = usize::from(cfg.channels.max(1));
    let mut rs = Resampler::new(cfg.sample_rate, rate).context("microphone rate")?;
    let (mut mono, mut out) = (Vec::with_capacity(4096), Vec::with_capacity(4096));
    let stream = dev.build_input_stream(
        cfg,
        move |data: &[T], _: &cpal::InputCallbackInfo| {
            mono.clear();
            mono.extend(data.chunks(channels).map(|c| {
                let m = c.iter().map(|s| s.to_f32()).sum::<f32>() / c.len() as f32;
                i16::from_f32(m)
            }));
            out.resize(rs.max_output_len(mono.len()), 0);
            let n = rs.process(&mono, &mut out).unwrap_or(0);
            let _ = ring.push_slice(&out[..n]);
        },
        |e| tracing::warn!(error = %e, "microphone"),
        None,
    )?;
    Ok(stream)
}

fn build_output<T: Pcm>(
    dev: &cpal::Device,
    cfg: StreamConfig,
    rate: u32,
    mut ring: HeapCons<i16>,
) -> anyhow::Result<cpal::Stream> {
    let channels = usize::from(cfg.channels.max(1));
    let device_rate = cfg.sample_rate;
    let mut rs = Resampler::new(rate, device_rate).context("speaker rate")?;
    let (mut call, mut dev_pcm) = (Vec::with_capacity(4096), Vec::with_capacity(4096));
    let stream = dev.build_output_stream(
        cfg,
        move |data: &mut [T], _: &cpal::OutputCallbackInfo| {
            let frames = data.len() / channels;
            // The call samples that make `frames` at the device rate.
            let want = (frames as u64 * u64::from(rate)).div_ceil(u64::from(device_rate)) as usize;
            call.resize(want, 0);
            let got = ring.pop_slice(&mut call);
            call[got..].fill(0);
            dev_pcm.resize(rs.max_output_len(want).max(frames), 0);
            let n = rs.process(&call, &mut dev_pcm).unwrap_or(0);
            for (i, frame) in data.chunks_mut(channels).enumerate() {
                let v = T::from_f32(if i < n { f32::from(dev_pcm[i]) / 32768.0 } else { 0.0 });
                frame.fill(v);
            }
        },
        |e| tracing::warn!(error = %e, "speaker"),
        None,
    )?;
    Ok(stream)
}
