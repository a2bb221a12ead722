// The shake race on the phone: shakes counted from the motion sensor (or taps, where there is no
// sensor or no permission), gathered and sent as draw.shake {count} at most every 500 ms.
// The server adds them up and ranks by them; the phone only shows its own count.

// A shake is a jolt above this acceleration (m/s², gravity removed): a firm wrist flick is 15-30,
// walking with the phone in hand stays under 10.
const SHAKE_MS2 = 13;
// One shake swings back and forth: the return swing of the same shake must not count twice.
const SHAKE_DEBOUNCE_MS = 180;
// The protocol allows one draw.shake every 500 ms, with 1 to 50 shakes in it.
export const SEND_EVERY_MS = 500;
export const MAX_PER_MESSAGE = 50;
// Low-pass filter weight for the gravity estimate when the device only gives acceleration with gravity.
const GRAVITY_ALPHA = 0.8;

export class ShakeCounter {
  /** @param {{send: (count: number) => Promise<unknown>, onChange: () => void}} opts */
  constructor({ send, onChange }) {
    this.send = send;
    this.onChange = onChange;
    this.total = 0; // shakes this phone gathered in this race (shown)
    this.pending = 0; // not sent yet
    this.lastShakeMs = 0;
    this.lastSentMs = 0;
    this.inFlight = false;
    this.timer = 0;
    this.gravity = null;
    this.listening = false;
    this.active = false;
    this.onMotion = (e) => this._motion(e);
  }

  /** Whether the browser asks before giving motion data (iOS 13+: a button press must ask). */
  static needsPermission() {
    return typeof DeviceMotionEvent !== "undefined" && typeof DeviceMotionEvent.requestPermission === "function";
  }

  static hasSensor() {
    return typeof DeviceMotionEvent !== "undefined";
  }

  start() {
    this.active = true;
    if (!ShakeCounter.needsPermission()) this.listen();
  }

  stop() {
    this.active = false;
    if (this.listening) window.removeEventListener("devicemotion", this.onMotion);
    this.listening = false;
    clearTimeout(this.timer);
    this.timer = 0;
  }

  /** Start over for a new race. */
  reset() {
    this.stop();
    this.total = 0;
    this.pending = 0;
  }

  listen() {
    if (this.listening || !ShakeCounter.hasSensor()) return;
    window.addEventListener("devicemotion", this.onMotion);
    this.listening = true;
  }

  /** Ask for motion data (iOS); must run inside a tap. Resolves true when granted. */
  async askPermission() {
    try {
      const answer = await DeviceMotionEvent.requestPermission();
      if (answer === "granted") {
        this.listen();
        return true;
      }
    } catch {
      // refused, or not in a user gesture: the tap button still works
    }
    return false;
  }

  /** One shake (from the sensor or a tap). */
  add(n = 1) {
    if (!this.active) return;
    this.total += n;
    this.pending += n;
    this.onChange();
    this._schedule();
  }

  _motion(e) {
    let x;
    let y;
    let z;
    const a = e.acceleration;
    if (a && a.x !== null && a.x !== undefined) {
      ({ x, y, z } = a);
    } else {
      const g = e.accelerationIncludingGravity;
      if (!g || g.x === null || g.x === undefined) return;
      if (!this.gravity) this.gravity = { x: g.x, y: g.y, z: g.z };
      for (const axis of ["x", "y", "z"]) {
        this.gravity[axis] = GRAVITY_ALPHA * this.gravity[axis] + (1 - GRAVITY_ALPHA) * g[axis];
      }
      x = g.x - this.gravity.x;
      y = g.y - this.gravity.y;
      z = g.z - this.gravity.z;
    }
    const now = performance.now();
    if (Math.hypot(x, y, z) < SHAKE_MS2 || now - this.lastShakeMs < SHAKE_DEBOUNCE_MS) return;
    this.lastShakeMs = now;
    this.add(1);
  }

  _schedule() {
    if (this.timer || this.inFlight || this.pending === 0) return;
    const wait = Math.max(0, this.lastSentMs + SEND_EVERY_MS - performance.now());
    this.timer = setTimeout(() => this._flush(), wait);
  }

  async _flush() {
    this.timer = 0;
    if (this.pending === 0 || this.inFlight) return;
    const count = Math.min(MAX_PER_MESSAGE, this.pending);
    this.pending -= count;
    this.inFlight = true;
    this.lastSentMs = performance.now();
    try {
      await this.send(count);
    } catch (err) {
      // Offline for a moment: keep the shakes for the next message. Refused (the window closed):
      // they no longer count.
      if (err && (err.code === "offline" || err.code === "timeout" || err.code === "rate_limited")) {
        this.pending += count;
      }
    } finally {
      this.inFlight = false;
      if (this.active) this._schedule();
    }
  }
}
