// The studio room page's Sources card (docs/revenue.md): a room's entry links per channel, each with
// its link and QR code; add and archive. Shown only to those who may manage them (room:admin or
// followup:manage): the list answers 403 to anyone else and the card stays hidden.
import { api } from "/static/js/http.js";
import { withBusy } from "/static/js/busy.js";
import { errorText, onLangChange, t } from "/static/js/i18n.js";

const room = JSON.parse(document.getElementById("studio-room").textContent).room;
const base = `/api/studio/rooms/${encodeURIComponent(room.id)}/sources`;
const card = document.querySelector("[data-sources]");
const rows = card.querySelector("[data-source-rows] tbody");
const form = card.querySelector("[data-source-form]");
const error = card.querySelector("[data-source-error]");
let sources = [];

function cell(...children) {
  const td = document.createElement("td");
  td.append(...children);
  return td;
}

function paint() {
  rows.replaceChildren();
  const live = sources.filter((s) => !s.archived);
  card.querySelector("[data-sources-empty]").hidden = live.length > 0;
  for (const source of live) {
    const tr = document.createElement("tr");
    tr.dataset.sourceCode = source.code;
    const link = document.createElement("a");
    link.href = source.link;
    link.textContent = source.link;
    const qr = document.createElement("a");
    qr.href = source.qr;
    qr.target = "_blank";
    const img = document.createElement("img");
    img.src = source.qr;
    img.alt = t("studio.sources.qr_of", { label: source.label });
    img.width = 64;
    img.height = 64;
    qr.append(img);
    const archive = document.createElement("button");
    archive.type = "button";
    archive.textContent = t("studio.sources.archive");
    archive.addEventListener("click", () => remove(source));
    tr.append(
      cell(source.label),
      cell(t(`studio.sources.channel.${source.channel}`)),
      cell(link),
      cell(qr),
      cell(new Date(source.created_ms).toLocaleDateString()),
      cell(archive),
    );
    rows.append(tr);
  }
}

async function remove(source) {
  if (!confirm(t("studio.sources.confirm_archive", { label: source.label }))) return;
  try {
    const archived = await api("DELETE", `${base}/${encodeURIComponent(source.code)}`);
    sources = sources.map((s) => (s.code === archived.code ? archived : s));
    paint();
  } catch (err) {
    error.textContent = err.message || errorText(err.code);
    error.hidden = false;
  }
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  error.hidden = true;
  const fields = new FormData(form);
  withBusy(form.querySelector("button[type=submit]"), async () => {
    try {
      const made = await api("POST", base, { label: fields.get("label"), channel: fields.get("channel") });
      sources = [...sources, made];
      form.reset();
      paint();
    } catch (err) {
      error.textContent = err.message || errorText(err.code);
      error.hidden = false;
    }
  });
});

try {
  sources = (await api("GET", base)).sources;
  card.hidden = false;
  paint();
} catch {
  // 403: this member may not manage sources; the card stays hidden.
}
onLangChange(paint);
