// Rendering of the phone's lists (questions, own items, comments). User text only ever goes through
// textContent. Rows are keyed and reused, so a vote button is never swapped out under a finger.
import { setText, t } from "/static/js/i18n.js";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Make `list`'s children the rows for `items`, in order, reusing rows by id. */
export function syncList(list, items, build, update) {
  const old = new Map([...list.children].map((row) => [row.dataset.itemId, row]));
  let cursor = list.firstElementChild;
  for (const item of items) {
    const key = String(item.id);
    let row = old.get(key);
    if (row) old.delete(key);
    else row = build(item);
    update(row, item);
    if (row !== cursor) list.insertBefore(row, cursor);
    else cursor = cursor.nextElementSibling;
  }
  for (const row of old.values()) row.remove();
}

function buildQuestion() {
  const li = el("li", "v-q");
  const body = el("div", "v-q-body");
  const tags = el("div", "v-q-tags");
  const kind = el("span", "v-tag v-kind-tag");
  kind.dataset.itemKind = "";
  const product = el("span", "v-tag v-product-tag");
  product.dataset.itemProduct = "";
  const status = el("span", "v-status");
  status.dataset.itemStatus = "";
  tags.append(kind, product, status);
  const text = el("p", "v-q-text");
  text.dataset.itemText = "";
  const author = el("p", "v-q-author muted");
  const answer = el("div", "v-answer");
  answer.dataset.itemAnswer = "";
  const answerLabel = el("span", "v-answer-label");
  setText(answerLabel, "q.answer");
  answer.append(answerLabel, el("p"));
  const reply = el("div", "v-reply");
  reply.dataset.itemReply = "";
  const replyLabel = el("span", "v-answer-label");
  setText(replyLabel, "viewer.reply");
  reply.append(replyLabel, el("p"));
  body.append(tags, text, author, answer, reply);
  const vote = el("button", "v-vote");
  vote.type = "button";
  vote.dataset.vote = "";
  vote.append(el("span", "v-vote-arrow", "▲"), el("span", "v-vote-count"));
  li.append(body, vote);
  return li;
}

function updateQuestion(li, item, ctx) {
  li.dataset.itemId = String(item.id);
  li.dataset.kind = item.kind;
  li.dataset.status = item.status;
  const kind = li.querySelector("[data-item-kind]");
  setText(kind, `q.kind.${item.kind}`);
  kind.dataset.kind = item.kind;
  const product = ctx.products.get(item.product_id);
  const productEl = li.querySelector("[data-item-product]");
  productEl.hidden = !product;
  productEl.textContent = product ? `🛍 ${product.name}` : "";
  const status = li.querySelector("[data-item-status]");
  status.hidden = !ctx.showStatus;
  if (ctx.showStatus) {
    setText(status, `q.status.${item.status}`);
    status.dataset.status = item.status;
  }
  li.querySelector("[data-item-text]").textContent = item.text;
  const author = li.querySelector(".v-q-author");
  author.hidden = ctx.showStatus; // one's own items need no byline
  if (item.author) {
    delete author.dataset.i18n;
    author.textContent = item.author;
  } else setText(author, "q.anonymous");
  const answer = li.querySelector("[data-item-answer]");
  answer.hidden = !item.answer;
  answer.querySelector("p").textContent = item.answer || "";
  const reply = li.querySelector("[data-item-reply]");
  reply.hidden = !(ctx.showStatus && item.reply);
  reply.querySelector("p").textContent = (ctx.showStatus && item.reply) || "";
  const vote = li.querySelector("[data-vote]");
  const voted = ctx.myVotes.has(item.id);
  const votable = item.status === "visible" || item.status === "answered";
  vote.hidden = !votable;
  vote.setAttribute("aria-pressed", String(voted));
  vote.setAttribute("aria-label", t(voted ? "viewer.unvote" : "viewer.vote"));
  vote.querySelector(".v-vote-count").textContent = String(item.votes || 0);
}

export function renderQuestions(list, items, ctx) {
  syncList(list, items, buildQuestion, (li, item) => updateQuestion(li, item, ctx));
}

export function renderComments(list, comments) {
  syncList(
    list,
    comments,
    () => {
      const li = el("li", "v-c");
      li.append(el("span", "v-c-author"), el("span", "v-c-text"));
      return li;
    },
    (li, item) => {
      li.dataset.itemId = String(item.id);
      const author = li.querySelector(".v-c-author");
      if (item.author) {
        delete author.dataset.i18n;
        author.textContent = item.author;
      } else setText(author, "q.anonymous");
      li.querySelector(".v-c-text").textContent = item.text;
    },
  );
}

export function renderSpotlight(section, item, products) {
  section.hidden = !item;
  if (!item) return;
  section.dataset.itemId = String(item.id);
  section.querySelector("[data-spotlight-text]").textContent = item.text;
  const product = products.get(item.product_id);
  const meta = section.querySelector("[data-spotlight-meta]");
  const who = item.author || t("q.anonymous");
  meta.textContent = product ? `${who} · 🛍 ${product.name}` : who;
  const answer = section.querySelector("[data-spotlight-answer]");
  answer.hidden = !item.answer;
  section.querySelector("[data-spotlight-answer-text]").textContent = item.answer || "";
}
