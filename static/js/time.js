// Clocks as every surface shows them: whole seconds, rounded up, on the server's time.

/**
 * A countdown's text: 75_000 -> "01:15" (or "1:15" with ``pad: false``), 3_725_000 -> "1:02:05".
 * Rounds up, so zero shows only once the time is over. The phone and the big screen pad the
 * minutes (a fixed-width clock read from afar); the console's compact cards do not.
 */
export function formatClock(ms, { pad = true } = {}) {
  const secs = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(secs / 3600);
  const m = Math.floor((secs % 3600) / 60);
  const ss = String(secs % 60).padStart(2, "0");
  if (h) return `${h}:${String(m).padStart(2, "0")}:${ss}`;
  return `${pad ? String(m).padStart(2, "0") : m}:${ss}`;
}
