// The team page: add members, change roles, remove members and set per-room roles through
// /api/studio/orgs/{org}/members... (server/accounts/team_http.py); the page reloads after each change.
import { api } from "/static/js/http.js";
import { errorText, initLangSwitch, t } from "/static/js/i18n.js";
import { withBusy } from "/static/js/busy.js";

initLangSwitch();
const problem = document.querySelector("[data-team-error]");

function showError(err) {
  const known = err && err.code && errorText(err.code) !== t("err.generic");
  problem.textContent = known ? errorText(err.code) : (err && err.message) || t("err.generic");
  problem.hidden = false;
}

async function change(control, fn) {
  problem.hidden = true;
  try {
    await withBusy(control, fn);
    return true;
  } catch (err) {
    showError(err);
    return false;
  }
}

for (const section of document.querySelectorAll("[data-org]")) {
  const base = `/api/studio/orgs/${encodeURIComponent(section.dataset.org)}/members`;
  const member = (el) => encodeURIComponent(el.closest("[data-member]").dataset.member);

  for (const select of section.querySelectorAll("[data-role-select]")) {
    const before = select.value;
    select.addEventListener("change", async () => {
      const ok = await change(select, () => api("PUT", `${base}/${member(select)}`, { role: select.value }));
      if (ok) location.reload();
      else select.value = before;
    });
  }

  for (const button of section.querySelectorAll("[data-remove]")) {
    button.addEventListener("click", async () => {
      if (!confirm(t("team.remove_confirm"))) return;
      if (await change(button, () => api("DELETE", `${base}/${member(button)}`))) location.reload();
    });
  }

  const add = section.querySelector("[data-add-form]");
  add.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(add);
    const body = { email: form.get("email"), name: form.get("name"), role: form.get("role") };
    let answer = null;
    const ok = await change(add.querySelector("button"), async () => {
      answer = await api("POST", base, body);
    });
    if (!ok) return;
    if (answer && answer.link) {
      const invite = section.querySelector("[data-invite]");
      invite.querySelector("[data-invite-link]").value = answer.link;
      invite.hidden = false;
      add.reset();
    } else {
      location.reload();
    }
  });

  for (const button of section.querySelectorAll("[data-clear-override]")) {
    button.addEventListener("click", async () => {
      const row = button.closest("[data-override]");
      const url = `${base}/${encodeURIComponent(row.dataset.account)}/rooms/${encodeURIComponent(row.dataset.room)}`;
      if (await change(button, () => api("DELETE", url))) location.reload();
    });
  }

  const override = section.querySelector("[data-override-form]");
  if (override) {
    override.addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = new FormData(override);
      const url = `${base}/${encodeURIComponent(form.get("account_id"))}/rooms/${encodeURIComponent(form.get("room_id"))}`;
      const role = form.get("role");
      const send = () => (role ? api("PUT", url, { role }) : api("DELETE", url));
      if (await change(override.querySelector("button"), send)) location.reload();
    });
  }
}
