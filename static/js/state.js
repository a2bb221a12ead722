// The browser's copy of the room state: a snapshot, then events applied in seq order.
// Mirrors server/rooms/snapshot.py apply_event (tests check the server's reducer against snapshots).

const HOST_ANNOUNCEMENTS = 20;

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
    default:
      break; // an event this page does not show
  }
  return next;
}
