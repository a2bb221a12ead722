// Reactions rise from the bottom of the stage. They arrive as counts per 200 ms tick; a count becomes a
// few floating emoji (logarithmic: 1 tap -> 1, 50 taps -> 6), and the number in the air is capped, so
// a thousand phones tapping costs the screen the same as fifty.

const EMOJI = { heart: "❤️", like: "👍", laugh: "😂", wow: "😮", fire: "🔥", clap: "👏" };
const MAX_FLOATING = 40;
const PER_KIND_MAX = 6;

export class ReactionFloats {
  constructor(layer) {
    this.layer = layer;
    this.floating = 0;
    this.total = 0;
    this.enabled = true;
  }

  add(counts) {
    for (const [kind, n] of Object.entries(counts || {})) {
      if (!EMOJI[kind] || !(n > 0)) continue;
      this.total += n;
      if (!this.enabled) continue;
      const floats = Math.min(PER_KIND_MAX, 1 + Math.floor(Math.log2(n)));
      for (let i = 0; i < floats; i += 1) this._spawn(kind, i * 160 + Math.random() * 120, n);
    }
    this.layer.dataset.total = String(this.total);
  }

  _spawn(kind, delay, n) {
    if (this.floating >= MAX_FLOATING) return;
    const el = document.createElement("span");
    el.className = "s-float";
    el.dataset.kind = kind;
    el.textContent = EMOJI[kind];
    el.style.left = `${8 + Math.random() * 76}%`;
    const scale = 0.8 + Math.min(0.8, Math.log10(n + 1) * 0.45) + Math.random() * 0.2;
    const rise = this.layer.clientHeight * (0.75 + Math.random() * 0.25);
    const drift = (Math.random() - 0.5) * this.layer.clientWidth * 0.5;
    this.layer.append(el);
    this.floating += 1;
    const anim = el.animate(
      [
        { transform: `translate(0, 0) scale(${scale * 0.6})`, opacity: 0 },
        { transform: `translate(${drift * 0.3}px, ${-rise * 0.15}px) scale(${scale})`, opacity: 1, offset: 0.12 },
        { transform: `translate(${drift}px, ${-rise}px) scale(${scale})`, opacity: 0 },
      ],
      { duration: 2600 + Math.random() * 900, delay, easing: "cubic-bezier(.25,.6,.45,1)", fill: "backwards" },
    );
    anim.onfinish = () => {
      el.remove();
      this.floating -= 1;
    };
  }
}
