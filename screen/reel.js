// The reveal: every winner's card is a slot reel of masked entrant names that spins, slows down and
// stops on the name the server drew. The names rolling past are picked from the draw's `sample` by
// its revealed seed, so every screen in the hall rolls alike and lands on the same winners.
// Only transform and opacity are animated (the compositor does the work; weak venue PCs and OBS).

// How long the reels spin. Browser tests (navigator.webdriver) get a short roll: the landing is
// still animated and asserted, just sooner.
export const ROLL_MS = navigator.webdriver ? 250 : 3600;
// The reels stop one after another, this far apart (capped, so 40 winners still land in ~5 s).
const STAGGER_MS = navigator.webdriver ? 20 : 260;
const STAGGER_TOTAL_MS = navigator.webdriver ? 200 : 1500;
// Names that roll past before the winner's: enough for a blur of names, few enough for the DOM.
const ROLLING_NAMES = 28;
const CONFETTI = 48;

export function reducedMotion() {
  return window.matchMedia("(prefers-reduced-motion: reduce)").matches;
}

/** A small deterministic generator (mulberry32) seeded from hex text: the same names on every screen. */
function generator(hex, salt) {
  let a = (parseInt(String(hex).slice(0, 8), 16) ^ Math.imul(salt + 1, 0x9e3779b1)) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The names a card rolls through, ending on the winner's. */
export function reelNames(sample, winner, seed, place) {
  const pool = sample && sample.length ? sample : [winner];
  const next = generator(seed || "0", place);
  const names = [];
  for (let i = 0; i < ROLLING_NAMES + Math.min(place, 12); i += 1) {
    names.push(pool[Math.floor(next() * pool.length)]);
  }
  // The name just before the stop differs from the winner's, so the last step is visible.
  if (pool.length > 1) {
    for (let i = names.length - 1; i >= names.length - 2 && i >= 0; i -= 1) {
      if (names[i] === winner) names[i] = pool.find((n) => n !== winner);
    }
  }
  names.push(winner);
  return names;
}

function nameEl(text) {
  const el = document.createElement("div");
  el.className = "s-reel-name";
  el.textContent = text;
  return el;
}

/** Show the winner's name still (no roll): a reload, reduced motion, or after the roll. */
export function settle(reel, winner) {
  const name = nameEl(winner);
  name.dataset.winnerName = "";
  const strip = document.createElement("div");
  strip.className = "s-reel-strip";
  strip.append(name);
  reel.replaceChildren(strip);
}

/** Spin one reel and stop on ``winner``; resolves when it stands still. */
export function roll(reel, names, index) {
  const strip = document.createElement("div");
  strip.className = "s-reel-strip";
  strip.append(...names.map(nameEl));
  reel.replaceChildren(strip);
  const stop = `translateY(${(-100 * (names.length - 1)) / names.length}%)`;
  const delay = Math.min(STAGGER_TOTAL_MS, index * STAGGER_MS);
  const animation = strip.animate([{ transform: "translateY(0)" }, { transform: stop }], {
    duration: ROLL_MS + delay,
    easing: "cubic-bezier(0.12, 0.72, 0.12, 1)",
    fill: "forwards",
  });
  return animation.finished.then(
    () => animation,
    () => animation,
  );
}

/** A burst of confetti over the panel; the pieces remove themselves. */
export function confetti(layer) {
  if (reducedMotion()) return;
  const colors = ["#ff3d6e", "#ffb020", "#2ecc71", "#4da3ff", "#ffffff", "#c77dff"];
  const pieces = [];
  for (let i = 0; i < CONFETTI; i += 1) {
    const piece = document.createElement("span");
    piece.className = "s-confetti";
    piece.style.left = `${Math.random() * 100}%`;
    piece.style.background = colors[i % colors.length];
    const dx = (Math.random() - 0.5) * 30;
    const spin = (Math.random() - 0.5) * 1440;
    const fall = piece.animate(
      [
        { transform: "translate(0, -5cqw) rotate(0deg)", opacity: 1 },
        { transform: `translate(${dx}cqw, 50cqw) rotate(${spin}deg)`, opacity: 0.9, offset: 0.85 },
        { transform: `translate(${dx * 1.1}cqw, 58cqw) rotate(${spin * 1.1}deg)`, opacity: 0 },
      ],
      { duration: 1800 + Math.random() * 1400, delay: Math.random() * 300, easing: "cubic-bezier(0.2, 0.6, 0.4, 1)" },
    );
    fall.finished.then(
      () => piece.remove(),
      () => piece.remove(),
    );
    pieces.push(piece);
  }
  layer.append(...pieces);
}
