// What this console may do: the welcome names its scopes (a signed-in member's role, or every room
// scope for the room's host key). Tabs, cards and buttons marked data-scope="a b" (any of them) are
// hidden when the console holds none of their scopes; buttons drawn later inside a marked area are
// hidden by console.css from <body data-can="...">. Hiding is for clarity only: the server refuses
// an action whose scope the console lacks, whatever the page shows.
import { setText, t } from "/static/js/i18n.js";

let held = null; // null until the first welcome: nothing is hidden before the server has spoken

/** Whether the console holds ``scope`` (true until the welcome says otherwise). */
export function can(scope) {
  return held === null || held.has(scope);
}

/** Mark what the console may not use (again after each render: new elements may carry data-scope). */
export function applyScopes(root = document) {
  if (held === null) return;
  for (const el of root.querySelectorAll("[data-scope]")) {
    const any = el.dataset.scope.split(/\s+/).some((s) => held.has(s));
    el.toggleAttribute("data-scope-off", !any);
    if (!any && el.matches("input, select, textarea, button")) el.disabled = true;
  }
}

/** A welcome arrived: remember its scopes, mark the page, and name the member in the header. */
export function welcomeScopes(welcome) {
  if (!welcome || !Array.isArray(welcome.scopes)) return;
  held = new Set(welcome.scopes);
  document.body.dataset.can = welcome.scopes.join(" ");
  applyScopes();
  const badge = document.querySelector("[data-member]");
  const member = welcome.member;
  if (badge) {
    badge.hidden = !member;
    if (member) {
      badge.dataset.role = member.role;
      badge.querySelector("[data-member-name]").textContent = member.name || "";
      setText(badge.querySelector("[data-member-role]"), `console.role.${member.role}`);
      badge.title = t("console.role.title");
    }
  }
  // A member is named by their account: the "your name" box is for co-hosts on the host key.
  const meForm = document.querySelector("[data-me-form]");
  if (meForm) meForm.hidden = Boolean(member);
}
