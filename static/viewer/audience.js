// The phone's model of the audience's voice: shown questions, recent comments, and this viewer's own
// items and votes. Kept apart from state.js because it outlives the 50-item wall window: a storm of
// comments must not push the questions a viewer is voting on off their phone.

const QUESTIONS_KEPT = 100;
const COMMENTS_KEPT = 30;
const SHOWN = new Set(["visible", "answered"]);

export const REACTIONS = [
  ["heart", "❤️"],
  ["like", "👍"],
  ["laugh", "😂"],
  ["wow", "😮"],
  ["fire", "🔥"],
  ["clap", "👏"],
];

/** Characters as the server counts them (code points after NFC, trimmed): emoji and CJK count as one. */
export function charCount(text) {
  return [...text.normalize("NFC").trim()].length;
}

export const COMMENT_MAX_CHARS = 100;
export const QUESTION_MAX_CHARS = 300;

export class Audience {
  constructor() {
    this.questions = new Map(); // id -> public item (shown feedback of every kind but comments)
    this.comments = []; // the newest shown comments, oldest first
    this.mine = new Map(); // id -> the viewer's own item (with the private reply)
    this.myVotes = new Set();
  }

  loadSnapshot(snap) {
    this.questions.clear();
    this.comments = [];
    for (const item of [...(snap.wall || []), ...(snap.top || [])]) this._take(item);
  }

  loadPersonal(personal) {
    if (!personal) return;
    this.mine = new Map((personal.mine || []).map((i) => [i.id, { ...i }]));
    this.myVotes = new Set(personal.my_votes || []);
  }

  applyWall(data) {
    for (const item of data.items || []) this._take(item);
    for (const id of data.removed || []) {
      this.questions.delete(id);
      this.comments = this.comments.filter((c) => c.id !== id);
    }
    for (const item of data.top || []) this._take(item);
    for (const [id, votes] of Object.entries(data.votes || {})) {
      const key = Number(id);
      if (this.questions.has(key)) this.questions.get(key).votes = votes;
      if (this.mine.has(key)) this.mine.get(key).votes = votes;
    }
    if (this.questions.size > QUESTIONS_KEPT) {
      const ids = [...this.questions.keys()].sort((a, b) => a - b);
      for (const id of ids.slice(0, ids.length - QUESTIONS_KEPT)) this.questions.delete(id);
    }
  }

  applyMine(item) {
    const before = this.mine.get(item.id) || {};
    this.mine.set(item.id, { ...before, ...item });
    if (SHOWN.has(item.status)) this._take(item);
    else this.questions.delete(item.id);
  }

  setVote(id, votes, voted) {
    if (voted) this.myVotes.add(id);
    else this.myVotes.delete(id);
    for (const map of [this.questions, this.mine]) if (map.has(id)) map.get(id).votes = votes;
  }

  sortedQuestions(order) {
    const list = [...this.questions.values()];
    if (order === "popular") list.sort((a, b) => b.votes - a.votes || b.id - a.id);
    else list.sort((a, b) => b.id - a.id);
    return list;
  }

  myQuestions() {
    return [...this.mine.values()].filter((i) => i.kind !== "comment").sort((a, b) => b.id - a.id);
  }

  _take(item) {
    if (item.kind === "comment") {
      const at = this.comments.findIndex((c) => c.id === item.id);
      if (!SHOWN.has(item.status)) {
        if (at >= 0) this.comments.splice(at, 1);
        return;
      }
      if (at >= 0) this.comments[at] = { ...item };
      else {
        this.comments.push({ ...item });
        this.comments.sort((a, b) => a.id - b.id);
        if (this.comments.length > COMMENTS_KEPT) this.comments.shift();
      }
      return;
    }
    if (SHOWN.has(item.status)) this.questions.set(item.id, { ...this.questions.get(item.id), ...item });
    else this.questions.delete(item.id);
  }
}
