// The phone's products: the shelf, the pinned card above the composer, and the details sheet with
// the buy link. The buy link goes through the server (/r/{room}/buy/{id}), which records the click
// and redirects to the shop with the viewer's coupon. Product text only goes through textContent.
import { setText } from "/static/js/i18n.js";
import { formatMoney } from "/static/js/money.js";
import { phase } from "/static/js/deals.js";
import { syncList } from "/static/viewer/lists.js";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Show an image only for an http(s) URL (the server checks too; this keeps the page honest). */
function setImage(img, url) {
  const ok = typeof url === "string" && /^https?:\/\//i.test(url);
  img.hidden = !ok;
  if (ok && img.getAttribute("src") !== url) img.src = url;
  if (!ok) img.removeAttribute("src");
}

export function initShelf({ roomId, intents, serverNow }) {
  const $ = (sel) => document.querySelector(sel);
  const pinned = $("[data-pinned]");
  const sheet = $("[data-sheet]");
  const shelf = $("[data-products]");
  let state = null;
  let openId = null;

  const buyHref = (id) => `/r/${encodeURIComponent(roomId)}/buy/${id}`;
  const product = (id) => (state.products || []).find((p) => p.id === id) || null;

  /** A deal running on the product now (live or sold out): its price is the one to show. */
  function dealOn(productId) {
    const now = serverNow();
    const list = (state.discounts || []).filter((d) => d.product_id === productId);
    for (let i = list.length - 1; i >= 0; i -= 1) {
      const p = phase(list[i], now);
      if (p === "live" || p === "sold_out") return list[i];
    }
    return null;
  }

  function setPrices(priceEl, listEl, p) {
    const deal = dealOn(p.id);
    priceEl.textContent = formatMoney(deal ? deal.price_minor : p.price_minor, p.currency, { digits: p.digits });
    listEl.hidden = !deal;
    listEl.textContent = deal ? formatMoney(deal.list_price_minor, p.currency, { digits: p.digits }) : "";
  }

  function setBuy(link, p) {
    link.hidden = !p.shop_url;
    link.href = buyHref(p.id);
    link.dataset.productId = String(p.id);
  }

  function onBuyClick(e) {
    const link = e.target.closest("[data-buy]");
    if (!link) return;
    const id = Number(link.dataset.productId);
    const deal = dealOn(id);
    intents.checkoutOpened(id, deal ? deal.id : null);
  }

  function renderSheet() {
    const p = openId === null ? null : product(openId);
    if (!p) {
      if (sheet.open) sheet.close();
      return;
    }
    sheet.dataset.productId = String(p.id);
    setImage(sheet.querySelector("[data-sheet-image]"), p.image_url);
    sheet.querySelector("[data-sheet-name]").textContent = p.name;
    setPrices(sheet.querySelector("[data-sheet-price]"), sheet.querySelector("[data-sheet-list]"), p);
    const desc = sheet.querySelector("[data-sheet-desc]");
    if (p.description) {
      delete desc.dataset.i18n;
      desc.textContent = p.description;
    } else setText(desc, "shop.no_description");
    desc.classList.toggle("muted", !p.description);
    setBuy(sheet.querySelector("[data-sheet-buy]"), p);
  }

  function openDetails(id) {
    const p = product(id);
    if (!p) return;
    openId = id;
    renderSheet();
    if (!sheet.open) sheet.showModal();
    const deal = dealOn(id);
    intents.send("product.details", id, deal ? { discount_id: deal.id } : {});
  }

  function renderPinned() {
    const pin = state.pinned || {};
    const p = pin.product_id == null ? null : product(pin.product_id);
    pinned.hidden = !p;
    if (!p) return;
    pinned.dataset.productId = String(p.id);
    setImage(pinned.querySelector("[data-pinned-image]"), p.image_url);
    pinned.querySelector("[data-pinned-name]").textContent = p.name;
    setPrices(pinned.querySelector("[data-pinned-price]"), pinned.querySelector("[data-pinned-list]"), p);
    setBuy(pinned.querySelector("[data-pinned-buy]"), p);
    // Counted once per pin: the same product pinned again later is a new view.
    if (document.visibilityState === "visible") intents.send("product.view", p.id, {}, `pv-${p.id}-${pin.pinned_ms}`);
  }

  function renderShelf() {
    const products = state.products || [];
    $("[data-products-section]").hidden = products.length === 0;
    syncList(
      shelf,
      products,
      () => {
        const li = el("li");
        const button = el("button", "v-product");
        button.type = "button";
        const img = el("img", "v-product-img");
        img.alt = "";
        img.loading = "lazy";
        img.dataset.productImage = ""; // product pictures are the only images the page makes
        const body = el("span", "v-product-body");
        const prices = el("span", "v-product-prices");
        prices.append(el("span", "price"), el("s", "list muted"));
        body.append(el("span", "name"), prices);
        button.append(img, body);
        li.append(button);
        return li;
      },
      (li, p) => {
        li.dataset.itemId = String(p.id);
        li.querySelector("button").dataset.productId = String(p.id);
        setImage(li.querySelector("img"), p.image_url);
        li.querySelector(".name").textContent = p.name;
        setPrices(li.querySelector(".price"), li.querySelector(".list"), p);
      },
    );
  }

  shelf.addEventListener("click", (e) => {
    const button = e.target.closest("[data-product-id]");
    if (button) openDetails(Number(button.dataset.productId));
  });
  pinned.querySelector("[data-pinned-details]").addEventListener("click", () => {
    openDetails(Number(pinned.dataset.productId));
  });
  for (const root of [pinned, sheet]) root.addEventListener("click", onBuyClick);
  sheet.querySelector("[data-sheet-close]").addEventListener("click", () => sheet.close());
  sheet.addEventListener("click", (e) => {
    if (e.target === sheet) sheet.close(); // a tap on the backdrop
  });
  sheet.addEventListener("close", () => (openId = null));
  document.addEventListener("visibilitychange", () => {
    if (state && document.visibilityState === "visible") renderPinned();
  });

  return {
    render(next) {
      state = next;
      renderShelf();
      renderPinned();
      renderSheet();
    },
  };
}
