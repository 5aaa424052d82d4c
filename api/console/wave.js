// The recording's waveform: the WAV bytes decoded in JS (16-bit PCM; stereo: left the caller,
// right dialtone), drawn on a canvas, one lane a channel; a click (or the arrow keys) seeks.

/** `{rate, channels, frames, samples: Int16Array view}` of a 16-bit PCM WAV, or throws. */
export function decodeWav(buf) {
  const v = new DataView(buf);
  const tag = (o) => String.fromCharCode(v.getUint8(o), v.getUint8(o + 1), v.getUint8(o + 2), v.getUint8(o + 3));
  if (buf.byteLength < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw new Error('not a WAV file');
  let fmt = null;
  let data = null;
  let o = 12;
  while (o + 8 <= buf.byteLength) {
    const id = tag(o);
    let size = v.getUint32(o + 4, true);
    const body = o + 8;
    if (id === 'fmt ') {
      fmt = { format: v.getUint16(body, true), channels: v.getUint16(body + 2, true), rate: v.getUint32(body + 4, true), bits: v.getUint16(body + 14, true) };
    } else if (id === 'data') {
      // A recording cut short may say more (or 0xFFFFFFFF) than there is.
      if (size === 0 || body + size > buf.byteLength) size = buf.byteLength - body;
      data = { offset: body, size };
      break;
    }
    o = body + size + (size % 2);
  }
  if (!fmt || !data) throw new Error('no fmt or data chunk');
  if ((fmt.format !== 1 && fmt.format !== 0xfffe) || fmt.bits !== 16) throw new Error(`not 16-bit PCM (format ${fmt.format}, ${fmt.bits} bits)`);
  const frames = Math.floor(data.size / (2 * fmt.channels));
  const samples = data.offset % 2 === 0
    ? new Int16Array(buf, data.offset, frames * fmt.channels)
    : new Int16Array(buf.slice(data.offset, data.offset + frames * fmt.channels * 2));
  return { rate: fmt.rate, channels: fmt.channels, frames, samples };
}

/** Per-column [min, max] of each channel (up to two) for `cols` columns. */
function peaks(wav, cols) {
  const lanes = Math.min(wav.channels, 2);
  const out = Array.from({ length: lanes }, () => new Float32Array(cols * 2));
  const per = wav.frames / cols;
  for (let ch = 0; ch < lanes; ch++) {
    for (let c = 0; c < cols; c++) {
      const a = Math.floor(c * per);
      const b = Math.max(a + 1, Math.floor((c + 1) * per));
      let lo = 0;
      let hi = 0;
      // At most ~2000 samples looked at per column: enough for the shape.
      const step = Math.max(1, Math.floor((b - a) / 2000));
      for (let i = a; i < b && i < wav.frames; i += step) {
        const s = wav.samples[i * wav.channels + ch];
        if (s < lo) lo = s;
        if (s > hi) hi = s;
      }
      out[ch][c * 2] = lo / 32768;
      out[ch][c * 2 + 1] = hi / 32768;
    }
  }
  return out;
}

/**
 * Draws `wav` on `canvas` and ties it to `audio`: the playhead follows the audio, a click
 * seeks to that point, ←/→ seek 5 s. Returns a function that stops following.
 */
export function waveform(canvas, audio, wav) {
  const lanes = Math.min(wav.channels, 2);
  const names = lanes === 2 ? ['caller (left)', 'dialtone (right)'] : ['mono'];
  const seconds = wav.frames / wav.rate;
  let cache = null;

  const duration = () => (Number.isFinite(audio.duration) && audio.duration > 0 ? audio.duration : seconds);

  function draw() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(100, Math.round(canvas.clientWidth * dpr));
    const hgt = Math.max(60, Math.round(canvas.clientHeight * dpr));
    if (canvas.width !== w || canvas.height !== hgt) { canvas.width = w; canvas.height = hgt; cache = null; }
    if (!cache || cache.cols !== w) cache = { cols: w, p: peaks(wav, w) };
    const g = canvas.getContext('2d');
    const css = getComputedStyle(canvas);
    const colours = [css.getPropertyValue('--wave-left').trim() || '#2563eb', css.getPropertyValue('--wave-right').trim() || '#0f766e'];
    g.clearRect(0, 0, w, hgt);
    const laneH = hgt / lanes;
    for (let ch = 0; ch < lanes; ch++) {
      const mid = laneH * ch + laneH / 2;
      const amp = laneH / 2 - 4 * dpr;
      g.fillStyle = colours[ch];
      const p = cache.p[ch];
      for (let x = 0; x < w; x++) {
        const y1 = mid - p[x * 2 + 1] * amp;
        const y2 = mid - p[x * 2] * amp;
        g.fillRect(x, y1, 1, Math.max(1, y2 - y1));
      }
      g.fillStyle = css.color || '#333';
      g.font = `${12 * dpr}px system-ui, sans-serif`;
      g.fillText(names[ch], 6 * dpr, laneH * ch + 14 * dpr);
      if (ch > 0) {
        g.fillStyle = 'rgba(127,127,127,.4)';
        g.fillRect(0, laneH * ch, w, dpr);
      }
    }
    const x = (audio.currentTime / duration()) * w;
    g.fillStyle = '#dc2626';
    g.fillRect(Math.min(w - 2 * dpr, Math.max(0, x)), 0, 2 * dpr, hgt);
  }

  const seek = (t) => {
    audio.currentTime = Math.min(Math.max(0, t), duration());
    draw();
  };
  const onClick = (e) => {
    const r = canvas.getBoundingClientRect();
    seek(((e.clientX - r.left) / r.width) * duration());
  };
  const onKey = (e) => {
    if (e.key === 'ArrowRight') { e.preventDefault(); seek(audio.currentTime + 5); }
    else if (e.key === 'ArrowLeft') { e.preventDefault(); seek(audio.currentTime - 5); }
    else if (e.key === 'Home') { e.preventDefault(); seek(0); }
    else if (e.key === 'End') { e.preventDefault(); seek(duration()); }
  };
  canvas.addEventListener('click', onClick);
  canvas.addEventListener('keydown', onKey);
  audio.addEventListener('timeupdate', draw);
  audio.addEventListener('seeked', draw);
  audio.addEventListener('loadedmetadata', draw);
  const ro = new ResizeObserver(() => draw());
  ro.observe(canvas);
  draw();
  return () => {
    ro.disconnect();
    audio.removeEventListener('timeupdate', draw);
  };
}
