// Plays the reply's PCM chunks in order on one AudioContext: a small jitter buffer.
//
// Chunks arrive as little-endian int16 mono frames, faster or slower than they play. Each one
// is scheduled right after the previous one; when the queue has run dry (the network or the
// server was slower than playback) the next chunk starts LEAD_SECONDS from now, so a late chunk
// shifts the rest instead of being cut or overlapping.
"use strict";

const LEAD_SECONDS = 0.12;

class PcmPlayer {
  constructor(element) {
    this.element = element; // shows the counters, also as data-* for tests and tools
    this.context = null;
    this.sampleRate = 48000;
    this.sources = new Set();
    this.reset();
  }

  // Called from the Send click: browsers allow audio to start only after a user gesture.
  unlock() {
    if (this.context === null) {
      const Context = window.AudioContext || window.webkitAudioContext;
      this.context = new Context({ sampleRate: this.sampleRate });
    }
    if (this.context.state === "suspended") {
      this.context.resume();
    }
  }

  reset() {
    this.stop();
    this.next = 0;
    this.chunks = 0;
    this.bytes = 0;
    this.scheduled = 0;
    this.seconds = 0;
    this.show();
  }

  setFormat(sampleRate) {
    this.sampleRate = sampleRate; // an AudioBuffer at another rate is resampled by the browser
  }

  // Schedule one binary frame (ArrayBuffer of int16 LE samples).
  push(data) {
    this.chunks += 1;
    this.bytes += data.byteLength;
    const count = Math.floor(data.byteLength / 2);
    if (count > 0 && this.context !== null) {
      const view = new DataView(data);
      const buffer = this.context.createBuffer(1, count, this.sampleRate);
      const channel = buffer.getChannelData(0);
      for (let i = 0; i < count; i += 1) {
        channel[i] = view.getInt16(i * 2, true) / 32768;
      }
      const source = this.context.createBufferSource();
      source.buffer = buffer;
      source.connect(this.context.destination);
      const earliest = this.context.currentTime + LEAD_SECONDS;
      const at = this.next < this.context.currentTime ? earliest : this.next;
      source.start(at);
      this.next = at + buffer.duration;
      this.sources.add(source);
      source.onended = () => this.sources.delete(source);
      this.scheduled += 1;
      this.seconds += buffer.duration;
    }
    this.show();
  }

  stop() {
    for (const source of this.sources) {
      source.stop();
    }
    this.sources.clear();
    this.next = 0;
  }

  show() {
    const data = this.element.dataset;
    data.chunks = String(this.chunks);
    data.bytes = String(this.bytes);
    data.scheduled = String(this.scheduled);
    this.element.textContent = this.chunks === 0
      ? "none received"
      : `${this.chunks} chunks received, ${this.scheduled} scheduled, ` +
        `${this.seconds.toFixed(1)} s`;
  }
}

window.PcmPlayer = PcmPlayer;
