// The composer: pick a kind (comment or feedback), optionally a product, write, send.
// Lengths are counted as the server counts them, so emoji and Chinese never trip a false "too long".
import { setText, t } from "/static/js/i18n.js";
import { errorKey, toast } from "/static/js/ui.js";
import { COMMENT_MAX_CHARS, QUESTION_MAX_CHARS, charCount } from "/static/viewer/audience.js";

export function initComposer({ client, onSent }) {
  const form = document.querySelector("[data-composer]");
  const textEl = form.querySelector("[data-compose-text]");
  const countEl = form.querySelector("[data-compose-count]");
  const errorEl = form.querySelector("[data-compose-error]");
  const submit = form.querySelector("[data-compose-submit]");
  const productRow = form.querySelector("[data-compose-product-row]");
  const productSel = form.querySelector("[data-compose-product]");
  const slowEl = form.querySelector("[data-compose-slow]");
  let products = [];
  let sending = false;

  const kind = () => form.querySelector("input[name=kind]:checked").value;
  const limit = () => (kind() === "comment" ? COMMENT_MAX_CHARS : QUESTION_MAX_CHARS);

  const PLACEHOLDERS = {
    comment: "viewer.compose.placeholder.comment",
    question: "viewer.compose.placeholder.question",
  };

  function refresh() {
    const k = kind();
    const n = charCount(textEl.value);
    setText(countEl, "viewer.chars", { n, max: limit() });
    countEl.classList.toggle("over", n > limit());
    submit.disabled = sending || n === 0 || n > limit();
    productRow.hidden = k === "comment" || products.length === 0;
  }

  function setPlaceholder() {
    // translateAll() re-applies data-i18n-placeholder after a language switch; this applies it now.
    textEl.dataset.i18nPlaceholder = PLACEHOLDERS[kind()] || "viewer.compose.placeholder.feedback";
    textEl.placeholder = t(textEl.dataset.i18nPlaceholder);
  }

  form.addEventListener("change", () => {
    refresh();
    setPlaceholder();
  });
  textEl.addEventListener("input", refresh);
  textEl.addEventListener("keydown", (e) => {
    // Comments are chat: Enter sends. Questions may need several lines.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && kind() === "comment") {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (sending) return;
    const k = kind();
    const text = textEl.value.normalize("NFC").trim();
    if (!text) return setText(errorEl, "err.empty");
    if (charCount(text) > limit()) return setText(errorEl, "err.too_long");
    const data = { kind: k, text };
    if (k !== "comment" && productSel.value) data.product_id = Number(productSel.value);
    errorEl.textContent = "";
    sending = true;
    refresh();
    try {
      const item = await client.request("item.submit", data);
      textEl.value = "";
      productSel.value = "";
      toast(item.status === "pending" ? "viewer.compose.sent_pending" : "viewer.compose.sent");
      onSent(item);
    } catch (err) {
      setText(errorEl, errorKey(err));
    } finally {
      sending = false;
      refresh();
    }
  });

  refresh();
  return {
    setProducts(list) {
      const ids = list.map((p) => `${p.id}:${p.name}`).join("|");
      if (ids !== products.map((p) => `${p.id}:${p.name}`).join("|")) {
        const keep = productSel.value;
        const none = productSel.options[0];
        productSel.replaceChildren(
          none,
          ...list.map((p) => {
            const opt = document.createElement("option");
            opt.value = String(p.id);
            opt.textContent = p.name;
            return opt;
          }),
        );
        productSel.value = list.some((p) => String(p.id) === keep) ? keep : "";
      }
      products = list;
      refresh();
    },
    /** Start a question about a product (an askers-only deal unlocks with one). */
    askAbout(productId) {
      form.querySelector("[data-compose-kind=question]").checked = true;
      refresh();
      setPlaceholder();
      if (products.some((p) => p.id === productId)) productSel.value = String(productId);
      form.scrollIntoView({ block: "center" });
      textEl.focus();
    },
    /** Put a comment in the box, ready to send (a keyword draw's 口令). */
    fill(text) {
      form.querySelector("[data-compose-kind=comment]").checked = true;
      textEl.value = text;
      errorEl.textContent = "";
      refresh();
      setPlaceholder();
      form.scrollIntoView({ block: "center" });
      textEl.focus();
    },
    setSlowMode(secs) {
      slowEl.hidden = !secs;
      if (secs) setText(slowEl, "viewer.compose.slow", { n: secs });
    },
  };
}
