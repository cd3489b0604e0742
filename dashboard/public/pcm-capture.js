// AudioWorklet of the voice talk page: the microphone's samples (the context's rate, usually 48 kHz)
// averaged down to 16 kHz mono, posted to the page as PCM16 little-endian frames of `frameSamples`.
class PcmCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { targetRate, frameSamples } = options.processorOptions;
    this.ratio = sampleRate / targetRate;
    this.frameSamples = frameSamples;
    this.frame = new DataView(new ArrayBuffer(frameSamples * 2));
    this.filled = 0;
    this.phase = 0;
    this.sum = 0;
    this.count = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      this.sum += channel[i];
      this.count += 1;
      this.phase += 1;
      if (this.phase < this.ratio) continue;
      this.phase -= this.ratio;
      const sample = Math.max(-1, Math.min(1, this.sum / this.count));
      this.sum = 0;
      this.count = 0;
      this.frame.setInt16(this.filled * 2, Math.round(sample * 32767), true);
      this.filled += 1;
      if (this.filled === this.frameSamples) {
        this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
        this.frame = new DataView(new ArrayBuffer(this.frameSamples * 2));
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
