// The browser's copy of the room state: a snapshot, then events applied in seq order.
// Mirrors server/rooms/snapshot.py apply_event and server/questions/snapshot.py (tests check the server's reducer against snapshots).

const HOST_ANNOUNCEMENTS = 20;
const WALL_ITEMS = 50;
const HOST_COMMENTS = 100;

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
    default:
      break; // an event this page does not show
  }
  return next;
}
