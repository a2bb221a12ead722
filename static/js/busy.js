// A button while its action is in flight: off (no second send), aria-busy for assistive technology,
// and optionally a label that says so ("Saving…"), put back once the action settles.
import { setText } from "/static/js/i18n.js";

const inFlight = new WeakSet();

/** Whether ``button``'s action is still in flight. */
export function isBusy(button) {
  return inFlight.has(button);
}

/**
 * Run ``fn`` with ``button`` busy; its result or its error passes through. A call while the button is
 * busy does nothing (resolves undefined). ``busyKey``/``idleKey``: catalog keys of the label while
 * busy and after.
 */
export async function withBusy(button, fn, { busyKey, idleKey } = {}) {
  if (inFlight.has(button)) return undefined;
  inFlight.add(button);
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  if (busyKey) setText(button, busyKey);
  try {
    return await fn();
  } finally {
    inFlight.delete(button);
    button.disabled = false;
    button.removeAttribute("aria-busy");
    if (idleKey) setText(button, idleKey);
  }
}
