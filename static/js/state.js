// The browser's copy of the room state: a snapshot, then events applied in seq order.
// Mirrors server/rooms/snapshot.py apply_event, server/questions/snapshot.py,
// server/discounts/snapshot.py, server/draws/snapshot.py and server/followup/snapshot.py (tests check
// the server's reducer against snapshots, and this one against the server's: tests/browser/test_selling.py,
// tests/browser/test_console_draws.py, tests/browser/test_console_followup.py).

const HOST_ANNOUNCEMENTS = 20;
const WALL_ITEMS = 50;
const HOST_COMMENTS = 100;
const RECENT_DISCOUNTS = 20;
const HOST_CLAIMS = 200;
const HOST_DRAWS = 50;

function applyVotes(items, votes) {
  if (!votes) return;
  for (const item of items) {
    const count = votes[String(item.id)];
    if (count !== undefined) item.votes = count;
  }
}

function reduceWall(next, data) {
  const byId = new Map((next.wall || []).map((i) => [i.id, i]));
  for (const item of data.items || []) byId.set(item.id, { ...item });
  for (const id of data.removed || []) byId.delete(id);
  next.wall = [...byId.keys()]
    .sort((a, b) => a - b)
    .map((id) => byId.get(id))
    .filter((i) => i.status === "visible" || i.status === "answered")
    .slice(-WALL_ITEMS);
  applyVotes(next.wall, data.votes);
  if (data.top !== null && data.top !== undefined) next.top = data.top.map((i) => ({ ...i }));
  if (next.spotlight) {
    const updated = (data.items || []).find((i) => i.id === next.spotlight.id);
    if (updated) next.spotlight = { ...updated };
    applyVotes([next.spotlight], data.votes);
  }
}

function reduceQueue(next, data) {
  const queue = new Map((next.queue || []).map((i) => [i.id, i]));
  const comments = new Map((next.comments || []).map((i) => [i.id, i]));
  for (const item of data.items || []) (item.kind === "comment" ? comments : queue).set(item.id, { ...item });
  const sorted = (m) => [...m.keys()].sort((a, b) => a - b).map((id) => m.get(id));
  next.queue = sorted(queue);
  next.comments = sorted(comments).slice(-HOST_COMMENTS);
  applyVotes(next.queue, data.votes);
  applyVotes(next.comments, data.votes);
}

const byIdSorted = (m) => [...m.keys()].sort((a, b) => a - b).map((id) => m.get(id));

/** A whole discount over the one held: counters with an older version never win (merge_discount). */
export function mergeDiscount(old, incoming) {
  const merged = { ...incoming };
  if (old && (old.v ?? 0) > (incoming.v ?? 0)) {
    for (const key of ["quantity", "claimed", "remaining"]) merged[key] = old[key];
    if (merged.status === "live" || merged.status === "sold_out") {
      merged.status = merged.remaining <= 0 ? "sold_out" : "live";
    }
    merged.v = old.v;
  }
  return merged;
}

function reduceDiscount(next, data) {
  const byId = new Map((next.discounts || []).map((d) => [d.id, d]));
  byId.set(data.id, mergeDiscount(byId.get(data.id), data));
  next.discounts = byIdSorted(byId).slice(-RECENT_DISCOUNTS);
}

function reduceStock(next, data) {
  for (const d of next.discounts || []) {
    const counts = data.counts[String(d.id)];
    if (counts === undefined || counts.v < (d.v ?? 0)) continue;
    d.claimed = counts.claimed;
    d.remaining = counts.remaining;
    d.quantity = counts.quantity;
    d.v = counts.v;
    if (d.status !== "ended") d.status = counts.status;
  }
}

function reduceClaims(next, data) {
  const byId = new Map((next.claims || []).map((c) => [c.id, c]));
  for (const claim of data.claims) byId.set(claim.id, { ...claim });
  next.claims = byIdSorted(byId).slice(-HOST_CLAIMS);
}

/** The newest draw replaces the current one; the host's history keeps the 50 latest (reduce_draw). */
function reduceDraw(next, data) {
  if (next.draw == null || data.id >= next.draw.id) next.draw = { ...data };
  if ("draws" in next) {
    const byId = new Map((next.draws || []).map((d) => [d.id, d]));
    byId.set(data.id, { ...data });
    next.draws = byIdSorted(byId).slice(-HOST_DRAWS);
  }
}

/** The live entrant count, for a draw still taking entries (reduce_entrants). */
function reduceEntrants(next, data) {
  for (const d of [next.draw, ...(next.draws || [])]) {
    if (d != null && d.id === data.id && d.status === "open") d.entrants = data.entrants;
  }
}

export function applyEvent(snap, type, data) {
  const next = structuredClone(snap);
  switch (type) {
    case "room.status":
      Object.assign(next.room, data);
      break;
    case "announcement":
      next.announcement = { ...data };
      if (next.announcements) {
        next.announcements = [{ ...data }, ...next.announcements.filter((a) => a.id !== data.id)].slice(
          0,
          HOST_ANNOUNCEMENTS,
        );
      }
      break;
    case "presence":
      next.presence = { ...data };
      break;
    case "wall":
      reduceWall(next, data);
      break;
    case "queue":
      reduceQueue(next, data);
      break;
    case "spotlight":
      next.spotlight = data.item ? { ...data.item } : null;
      break;
    case "room.settings":
      next.settings = { ...data };
      break;
    case "blocklist":
      next.blocklist = [...data.words];
      break;
    case "sanctions":
      next.sanctions = data.sanctions.map((s) => ({ ...s }));
      break;
    case "products":
      next.products = data.products.map((p) => ({ ...p }));
      break;
    case "pinned":
      next.pinned = { ...data };
      break;
    case "discount":
      reduceDiscount(next, data);
      break;
    case "stock":
      reduceStock(next, data);
      break;
    case "claims":
      reduceClaims(next, data);
      break;
    case "draw":
      reduceDraw(next, data);
      break;
    case "draw.entrants":
      reduceEntrants(next, data);
      break;
    case "followup":
      next.followup = structuredClone(data); // campaigns, dead letters and alerts, whole (reduce_followup)
      break;
    case "sales":
      next.sales = {
        products: Object.fromEntries(Object.entries(data.products).map(([k, v]) => [k, { ...v }])),
        followers: data.followers,
      };
      break;
    default:
      break; // an event this page does not show
  }
  return next;
}
