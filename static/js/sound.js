// An optional new-order chime for the kitchen, made with WebAudio (no audio files to fetch).
// Browsers only let a page make sound after a user gesture, so the context is created or
// resumed from the toggle's click.

const STORAGE_KEY = "orderpulse.kitchen.sound";

export class Chime {
  constructor() {
    this.context = null;
    this.enabled = localStorage.getItem(STORAGE_KEY) === "on";
  }

  /** Turn the chime on or off; call from a click handler. */
  setEnabled(enabled) {
    this.enabled = enabled;
    localStorage.setItem(STORAGE_KEY, enabled ? "on" : "off");
    if (enabled) {
      this.unlock();
      this.play();
    }
  }

  unlock() {
    const AudioContextClass = window.AudioContext || window.webkitAudioContext;
    if (!AudioContextClass) return;
    if (!this.context) this.context = new AudioContextClass();
    if (this.context.state === "suspended") this.context.resume().catch(() => {});
  }

  /** Two rising beeps, loud enough for a kitchen, short enough not to annoy. */
  play() {
    if (!this.enabled || !this.context || this.context.state !== "running") return;
    const start = this.context.currentTime + 0.02;
    [[880, 0], [1320, 0.18]].forEach(([frequency, offset]) => {
      const oscillator = this.context.createOscillator();
      const gain = this.context.createGain();
      oscillator.type = "sine";
      oscillator.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.35, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.16);
      oscillator.connect(gain).connect(this.context.destination);
      oscillator.start(start + offset);
      oscillator.stop(start + offset + 0.18);
    });
  }
}
