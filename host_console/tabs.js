// The console's tabs (Questions | Selling | Draws | Follow-up): one panel at a time, the choice kept in
// the address (#selling, #draws, #followup) so a reload stays on it; arrow keys move along the tab bar.
const $ = (sel) => document.querySelector(sel);
const TABS = ["questions", "selling", "draws", "followup"];

/** Tabs this console may not use are hidden (roles.js marks them data-scope-off). */
function usable(tab) {
  const b = document.querySelector(`[data-tabs] [data-tab="${tab}"]`);
  return Boolean(b) && !b.hasAttribute("data-scope-off");
}

function fromHash() {
  const tab = location.hash.slice(1);
  return TABS.includes(tab) ? tab : "questions";
}

export class Tabs {
  constructor() {
    this.current = "questions";
    this._bind();
  }

  show(tab, { remember = true } = {}) {
    this.current = TABS.includes(tab) && usable(tab) ? tab : TABS.find(usable) || "questions";
    for (const b of document.querySelectorAll("[data-tabs] [data-tab]")) {
      const on = b.dataset.tab === this.current;
      b.setAttribute("aria-selected", String(on));
      b.tabIndex = on ? 0 : -1;
    }
    for (const panel of document.querySelectorAll("[data-panel]")) panel.hidden = panel.dataset.panel !== this.current;
    document.body.dataset.consoleTab = this.current;
    if (remember) {
      const address = this.current === "questions" ? location.pathname + location.search : `#${this.current}`;
      history.replaceState(null, "", address);
    }
  }

  _bind() {
    const bar = $("[data-tabs]");
    bar.addEventListener("click", (e) => {
      const b = e.target.closest("[data-tab]");
      if (b) this.show(b.dataset.tab);
    });
    bar.addEventListener("keydown", (e) => {
      if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
      const step = e.key === "ArrowRight" ? 1 : TABS.length - 1;
      let next = TABS[(TABS.indexOf(this.current) + step) % TABS.length];
      while (!usable(next) && next !== this.current) next = TABS[(TABS.indexOf(next) + step) % TABS.length];
      this.show(next);
      $(`[data-tab="${next}"]`).focus();
      e.preventDefault();
    });
    for (const b of document.querySelectorAll("[data-goto-tab]")) {
      b.addEventListener("click", () => this.show(b.dataset.gotoTab));
    }
    window.addEventListener("hashchange", () => this.show(fromHash(), { remember: false }));
    this.show(fromHash(), { remember: false });
  }
}
