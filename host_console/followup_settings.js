// The Follow-up tab's settings (quiet hours, frequency caps, the failure ratio that pauses a journey,
// the outbound webhook and the secret its calls are signed with) and the do-not-contact form (stop
// messaging one person, with a reason).
import { setText } from "/static/js/i18n.js";
import { FormError, copyText, httpUrl, sendForm, wholeNumber } from "/console-assets/forms.js";
import { showFuError } from "/console-assets/followup_api.js";

const $ = (sel) => document.querySelector(sel);
const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;
const MAX_CAP = 100;
const URL_MAX_CHARS = 1000;
const REASON_MAX_CHARS = 32;
const UTM_SOURCE = /^[A-Za-z0-9._-]{1,40}$/; // as the server's rule (server/followup/wire.py)

export class SettingsView {
  /** @param {{api: object, done: (key: string, vars?: object) => void}} ctx */
  constructor(ctx) {
    this.ctx = ctx;
    this.form = $("[data-fu-settings-form]");
    this.dnc = $("[data-fu-dnc-form]");
    this.dirty = false; // the host changed a field since it was filled: a reload must not undo that
    this.secret = null;
    this.secretShown = false;
    this._bind();
  }

  update(data) {
    if (!this.dirty) this.fill(data.settings);
    this.secret = data.webhook_secret || null;
    this.renderSecret();
  }

  /** The webhook signing secret, masked until asked for (the screen may be shared on stream). */
  renderSecret() {
    $("[data-fu-secret-row]").hidden = !this.secret;
    if (!this.secret) return;
    const code = $("[data-fu-secret]");
    const hidden = !this.secretShown;
    code.dataset.hidden = String(hidden);
    code.textContent = hidden ? `${this.secret.slice(0, 6)}${"•".repeat(16)}` : this.secret;
    const toggle = $("[data-fu-secret-toggle]");
    toggle.setAttribute("aria-pressed", String(!hidden));
    setText(toggle, hidden ? "sell.shop.show" : "sell.shop.hide");
  }

  fill(s) {
    const f = this.form.elements;
    f.quiet_start.value = s.quiet_start;
    f.quiet_end.value = s.quiet_end;
    f.cap_per_day.value = String(s.cap_per_day);
    f.cap_per_week.value = String(s.cap_per_week);
    // A ratio as a percentage, without float noise (0.07 * 100 = 7.000000000000001).
    f.failure_pause.value = String(Math.round(s.failure_pause_ratio * 1000) / 10);
    f.webhook_url.value = s.webhook_url || "";
    f.utm.checked = s.utm !== false;
    f.utm_source.value = s.utm_source || "";
    this.dirty = false;
  }

  read() {
    const f = this.form.elements;
    const data = {};
    for (const name of ["quiet_start", "quiet_end"]) {
      if (!HHMM.test(f[name].value)) throw new FormError("fu.v.time", undefined, f[name]);
      data[name] = f[name].value;
    }
    for (const name of ["cap_per_day", "cap_per_week"]) {
      const n = f[name].validity.badInput ? null : wholeNumber(f[name].value, 0, MAX_CAP);
      if (n === null) throw new FormError("sell.v.range", { low: 0, high: MAX_CAP }, f[name]);
      data[name] = n;
    }
    const pct = Number(String(f.failure_pause.value).trim());
    data.failure_pause_ratio = Math.round(pct * 10) / 1000; // a tenth of a percent is fine enough
    if (f.failure_pause.value.trim() === "" || !(data.failure_pause_ratio > 0) || pct > 100) {
      throw new FormError("fu.v.percent", undefined, f.failure_pause);
    }
    const url = f.webhook_url.value.trim();
    if (url && (!httpUrl(url) || url.length > URL_MAX_CHARS)) {
      throw new FormError("sell.v.url", undefined, f.webhook_url);
    }
    data.webhook_url = url || null;
    data.utm = f.utm.checked;
    const source = f.utm_source.value.trim();
    if (source && !UTM_SOURCE.test(source)) throw new FormError("fu.v.utm_source", undefined, f.utm_source);
    data.utm_source = source || null;
    return data;
  }

  save() {
    const send = async () => {
      this.fill(await this.ctx.api.call("PUT", "/settings", this.read()));
      this.ctx.done("fu.done.settings_saved");
    };
    return sendForm($("[data-fu-settings-save]"), $("[data-fu-settings-error]"), send, showFuError);
  }

  // --- do not contact -------------------------------------------------------------------------------

  readDnc() {
    const f = this.dnc.elements;
    const address = f.address.value.trim();
    if (!address) throw new FormError("fu.v.address", undefined, f.address);
    const reason = f.reason.value.trim();
    if (!reason) throw new FormError("fu.v.reason", undefined, f.reason);
    if ([...reason].length > REASON_MAX_CHARS) {
      throw new FormError("sell.v.too_long", { n: REASON_MAX_CHARS }, f.reason);
    }
    const data = { channel: f.channel.value, reason };
    if (address.includes("@")) data.email = address;
    else data.phone = address;
    return data;
  }

  block() {
    const send = async () => {
      const result = await this.ctx.api.post("/dnc", this.readDnc());
      this.ctx.done("fu.done.dnc", { n: result.contacts });
      this.dnc.reset();
    };
    return sendForm($("[data-fu-dnc-submit]"), $("[data-fu-dnc-error]"), send, showFuError);
  }

  _bind() {
    this.form.addEventListener("input", () => (this.dirty = true));
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.save();
    });
    $("[data-fu-secret-toggle]").addEventListener("click", () => {
      this.secretShown = !this.secretShown;
      this.renderSecret();
    });
    $("[data-fu-secret-copy]").addEventListener("click", () => {
      if (this.secret) copyText(this.secret, () => this.ctx.done("host.copied"));
    });
    this.dnc.addEventListener("submit", (e) => {
      e.preventDefault();
      this.block();
    });
  }
}
