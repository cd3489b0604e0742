/**
 * The browser's side of a spoken conversation: the microphone as PCM16 16 kHz frames (an AudioWorklet,
 * `public/pcm-capture.js`) and the agent's reply audio (PCM16 16 kHz chunks) played in order, stoppable
 * at once for barge-in. One AudioContext, made on the user's click (browsers start audio only then).
 */

export const SAMPLE_RATE = 16_000;
const FRAME_SAMPLES = 480; // 30 ms at 16 kHz

export class VoiceAudio {
  private readonly context: AudioContext;
  private stream: MediaStream | null = null;
  private capture: AudioWorkletNode | null = null;
  private readonly playing = new Set<AudioBufferSourceNode>();
  private playhead = 0;

  private constructor(context: AudioContext) {
    this.context = context;
  }

  /** Open the microphone; every 30 ms frame goes to `onFrame`. Throws when the browser refuses it. */
  static async open(onFrame: (pcm: ArrayBuffer) => void): Promise<VoiceAudio> {
    if (!navigator.mediaDevices?.getUserMedia) throw new Error("This browser gives no microphone here (it needs HTTPS or localhost).");
    const audio = new VoiceAudio(new AudioContext());
    try {
      audio.stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
      await audio.context.audioWorklet.addModule("/pcm-capture.js");
      const capture = new AudioWorkletNode(audio.context, "pcm-capture", {
        numberOfInputs: 1,
        numberOfOutputs: 0,
        processorOptions: { targetRate: SAMPLE_RATE, frameSamples: FRAME_SAMPLES },
      });
      capture.port.onmessage = (event: MessageEvent<ArrayBuffer>) => onFrame(event.data);
      audio.context.createMediaStreamSource(audio.stream).connect(capture);
      audio.capture = capture;
      await audio.context.resume();
      return audio;
    } catch (error) {
      audio.close();
      throw error;
    }
  }

  /** Queue a chunk of reply audio (PCM16 little-endian mono 16 kHz) after the ones already queued. */
  play(pcm: ArrayBuffer): void {
    const view = new DataView(pcm);
    const count = Math.floor(pcm.byteLength / 2);
    if (count === 0) return;
    const buffer = this.context.createBuffer(1, count, SAMPLE_RATE);
    const samples = buffer.getChannelData(0);
    for (let i = 0; i < count; i++) samples[i] = view.getInt16(i * 2, true) / 32768;
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    source.onended = () => this.playing.delete(source);
    this.playhead = Math.max(this.playhead, this.context.currentTime + 0.02);
    source.start(this.playhead);
    this.playhead += buffer.duration;
    this.playing.add(source);
  }

  /** Whether reply audio is playing or queued. */
  get speaking(): boolean {
    return this.playing.size > 0;
  }

  /** Stop the reply now and drop what is queued (barge-in, interrupt). */
  silence(): void {
    for (const source of this.playing) {
      source.onended = null;
      source.stop();
    }
    this.playing.clear();
    this.playhead = 0;
  }

  close(): void {
    this.silence();
    if (this.capture) this.capture.port.onmessage = null;
    this.capture?.disconnect();
    this.stream?.getTracks().forEach((track) => track.stop());
    void this.context.close().catch(() => undefined);
  }
}
