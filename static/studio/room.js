// A room's page in the studio: the schedule form and cover, the links (copy, poster in the reader's
// time zone), the presets (add, edit, delete), cloning and the host-key switch.
import { api } from "/static/js/http.js";
import { withBusy } from "/static/js/busy.js";
import { currentLang, errorText, initLangSwitch, onLangChange, t } from "/static/js/i18n.js";
import { formatMoney, parseMajor, toMajor } from "/static/js/money.js";

initLangSwitch();
document.querySelector('[data-nav="rooms"]')?.setAttribute("aria-current", "page");
const data = JSON.parse(document.getElementById("studio-room").textContent);
const room = data.room;
const base = `/api/studio/rooms/${encodeURIComponent(room.id)}`;
let presets = data.presets;

function showError(el, err) {
  if (!el) return;
  el.hidden = !err;
  el.textContent = err ? err.message || errorText(err.code) : "";
}

function toLocalInput(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function paintTimes() {
  const format = new Intl.DateTimeFormat(currentLang(), { dateStyle: "medium", timeStyle: "short" });
  for (const el of document.querySelectorAll("time[data-ms]")) el.textContent = format.format(new Date(Number(el.dataset.ms)));
}

// --- schedule and cover --------------------------------------------------------------------------

const schedule = document.querySelector("[data-schedule-form]");
if (schedule) {
  const local = schedule.querySelector("[data-starts-local]");
  if (room.scheduled_ms) local.value = toLocalInput(room.scheduled_ms);
  schedule.addEventListener("submit", (event) => {
    event.preventDefault();
    const button = schedule.querySelector("button[type=submit]");
    withBusy(button, async () => {
      const body = {
        title: schedule.elements.title.value,
        description: schedule.elements.description.value,
        scheduled_ms: local.value ? new Date(local.value).getTime() : null,
      };
      try {
        const saved = await api("PATCH", base, body);
        Object.assign(room, saved);
        document.querySelector("[data-room-title]").textContent = saved.title;
        showError(schedule.querySelector("[data-schedule-error]"), null);
        schedule.querySelector("[data-schedule-saved]").hidden = false;
      } catch (err) {
        showError(schedule.querySelector("[data-schedule-error]"), err);
      }
    });
  });
}

const cover = document.querySelector("[data-cover-form]");
if (cover) {
  cover.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = cover.querySelector("[data-cover-file]").files[0];
    if (!file) return;
    withBusy(cover.querySelector("button[type=submit]"), async () => {
      try {
        await api("PUT", `${base}/cover`, file, { type: file.type || "application/octet-stream" });
        location.reload();
      } catch (err) {
        showError(cover.querySelector("[data-cover-error]"), err);
      }
    });
  });
  cover.querySelector("[data-cover-remove]")?.addEventListener("click", async (event) => {
    try {
      await api("DELETE", `${base}/cover`);
      location.reload();
    } catch (err) {
      showError(cover.querySelector("[data-cover-error]"), err);
    }
    event.preventDefault();
  });
}

// --- links ---------------------------------------------------------------------------------------

for (const button of document.querySelectorAll("[data-copy]")) {
  button.addEventListener("click", async () => {
    const input = document.querySelector(`[data-link="${button.dataset.copy}"]`);
    input.select();
    try {
      await navigator.clipboard.writeText(input.value);
      button.textContent = t("studio.link.copied");
    } catch {
      /* selected: the reader copies it by hand */
    }
  });
}
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
for (const link of document.querySelectorAll("[data-poster]")) {
  if (zone) link.href = `${link.getAttribute("href")}?tz=${encodeURIComponent(zone)}`;
}

// --- presets -------------------------------------------------------------------------------------

const products = new Map(data.products.map((p) => [p.id, p]));
const rows = document.querySelector("[data-preset-rows] tbody");
const editing = { discount: null, draw: null };

function summary(preset) {
  const p = preset.payload;
  if (preset.kind === "discount") {
    const product = products.get(p.product_id);
    const price = product && p.price_minor != null ? formatMoney(p.price_minor, product.currency) : `${p.percent_off}%`;
    return `${product ? product.name : "?"} · ${price} · ×${p.quantity} · ${Math.round(p.duration_secs / 60)} min`;
  }
  const tiers = (p.tiers || []).map((tier) => `${tier.name} ×${tier.count}`).join(", ");
  return `${p.title} · ${t(`studio.mode.${p.mode || "join"}`)} · ${tiers}`;
}

function paintPresets() {
  rows.replaceChildren();
  document.querySelector("[data-presets-empty]").hidden = presets.length > 0;
  for (const preset of presets) {
    const tr = document.createElement("tr");
    tr.dataset.presetId = preset.id;
    const label = document.createElement("td");
    label.textContent = preset.label;
    const small = document.createElement("div");
    small.className = "muted";
    small.textContent = summary(preset);
    label.append(small);
    const kind = document.createElement("td");
    kind.textContent = t(`studio.presets.${preset.kind}`);
    const launched = document.createElement("td");
    if (preset.launched_ms) {
      const time = document.createElement("time");
      time.dataset.ms = preset.launched_ms;
      launched.append(time);
    }
    const actions = document.createElement("td");
    if (document.querySelector(`[data-preset-form="${preset.kind}"]`)) {
      const edit = document.createElement("button");
      edit.type = "button";
      edit.textContent = t("studio.presets.edit");
      edit.addEventListener("click", () => fill(preset));
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = t("studio.presets.delete");
      remove.addEventListener("click", () => removePreset(preset));
      actions.append(edit, " ", remove);
    }
    tr.append(label, kind, launched, actions);
    rows.append(tr);
  }
  paintTimes();
}

function fill(preset) {
  const form = document.querySelector(`[data-preset-form="${preset.kind}"]`);
  const p = preset.payload;
  editing[preset.kind] = preset.id;
  form.elements.label.value = preset.label;
  if (preset.kind === "discount") {
    form.elements.product_id.value = String(p.product_id);
    const product = products.get(p.product_id);
    form.elements.price.value = product && p.price_minor != null ? toMajor(p.price_minor, product.currency) : "";
    form.elements.quantity.value = p.quantity;
    form.elements.minutes.value = Math.round(p.duration_secs / 60);
    form.elements.per_viewer_limit.value = p.per_viewer_limit || 1;
  } else {
    form.elements.title.value = p.title;
    form.elements.mode.value = p.mode || "join";
    form.elements.keyword.value = p.keyword || "";
    form.elements.tiers.value = (p.tiers || []).map((tier) => `${tier.name} * ${tier.count}`).join("\n");
    form.elements.window_secs.value = p.window_secs ?? 30;
  }
  form.scrollIntoView({ behavior: "smooth" });
}

function payloadOf(kind, form) {
  const whole = (name) => Number.parseInt(form.elements[name].value, 10);
  if (kind === "discount") {
    const productId = Number(form.elements.product_id.value);
    const product = products.get(productId);
    const price = parseMajor(form.elements.price.value, product ? product.currency : "CNY");
    return {
      product_id: productId,
      price_minor: price,
      quantity: whole("quantity"),
      duration_secs: whole("minutes") * 60,
      per_viewer_limit: whole("per_viewer_limit") || 1,
    };
  }
  // One prize a line: "name * count" (or just "name": one winner).
  const tiers = form.elements.tiers.value
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const match = line.match(/^(.*?)\s*[*×x]\s*(\d+)$/);
      return match ? { name: match[1], count: Number(match[2]) } : { name: line, count: 1 };
    });
  const payload = { title: form.elements.title.value, mode: form.elements.mode.value, tiers };
  if (payload.mode === "keyword") payload.keyword = form.elements.keyword.value;
  const windowSecs = whole("window_secs");
  if (!Number.isNaN(windowSecs)) payload.window_secs = windowSecs;
  return payload;
}

for (const form of document.querySelectorAll("[data-preset-form]")) {
  const kind = form.dataset.presetForm;
  form.addEventListener("reset", () => {
    editing[kind] = null;
    showError(form.querySelector("[data-preset-error]"), null);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    withBusy(form.querySelector("button[type=submit]"), async () => {
      const error = form.querySelector("[data-preset-error]");
      try {
        const body = { kind, label: form.elements.label.value, payload: payloadOf(kind, form) };
        const id = editing[kind];
        const saved = id ? await api("PUT", `${base}/presets/${id}`, body) : await api("POST", `${base}/presets`, body);
        presets = id ? presets.map((p) => (p.id === id ? saved : p)) : [...presets, saved];
        form.reset();
        paintPresets();
      } catch (err) {
        showError(error, err);
      }
    });
  });
}

async function removePreset(preset) {
  if (!confirm(t("studio.presets.confirm_delete", { label: preset.label }))) return;
  try {
    await api("DELETE", `${base}/presets/${preset.id}`);
    presets = presets.filter((p) => p.id !== preset.id);
    paintPresets();
  } catch (err) {
    alert(err.message || errorText(err.code));
  }
}

// --- clone and the host key ------------------------------------------------------------------------

const adminError = document.querySelector("[data-admin-error]");
document.querySelector("[data-clone]")?.addEventListener("click", (event) => {
  withBusy(event.currentTarget, async () => {
    try {
      const copy = await api("POST", `${base}/clone`);
      location.assign(`/studio/rooms/${encodeURIComponent(copy.id)}`);
    } catch (err) {
      showError(adminError, err);
    }
  });
});
const hostKey = document.querySelector("[data-host-key]");
const hostKeySaved = document.querySelector("[data-host-key-saved]");
hostKey?.addEventListener("change", async () => {
  hostKeySaved.hidden = true;
  try {
    const saved = await api("POST", `${base}/host-key`, { enabled: hostKey.checked });
    hostKey.checked = saved.host_key_enabled;
    hostKeySaved.hidden = false;
    showError(adminError, null);
  } catch (err) {
    hostKey.checked = !hostKey.checked;
    showError(adminError, err);
  }
});

paintPresets();
paintTimes();
onLangChange(() => {
  paintPresets();
  paintTimes();
});
