/* The inbox page: live list and conversation, presence and typing, the composer with drafts,
   mentions and collision checks, and the inbox's keyboard shortcuts. Listens to the events
   app.js dispatches ("loket:event", "loket:resync", "loket:shortcut"). */
(function () {
  "use strict";

  const $ = (selector, root) => (root || document).querySelector(selector);
  const pane = () => $("#conv-pane");
  const currentId = () => (pane() ? Number(pane().dataset.conversationId) : null);
  const debounce = (fn, ms) => {
    let timer = null;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  };
  let texts = null;
  const text = (key) => {
    if (texts === null) {
      const source = document.getElementById("loket-text");
      texts = source ? JSON.parse(source.textContent) : {};
    }
    return texts[key] || key;
  };

  async function getHTML(url) {
    const response = await fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" });
    if (!response.ok) throw new Error(`${response.status} for ${url}`);
    return response.text();
  }

  // --- timeline: append new entries once, replace changed ones ------------------------------
  function lastId() {
    const el = pane();
    return el ? Number(el.dataset.lastId || 0) : 0;
  }
  function absorb(html) {
    const timeline = $("#timeline");
    const el = pane();
    if (!timeline || !el) return [];
    const box = document.createElement("div");
    box.innerHTML = html;
    const added = [];
    for (const node of Array.from(box.children)) {
      const id = Number(node.dataset.id || 0);
      const existing = id && document.getElementById(`m${id}`);
      if (existing) existing.replaceWith(node);
      else { timeline.appendChild(node); added.push(node); }
      if (id > lastId()) el.dataset.lastId = String(id);
    }
    if (window.htmx) htmx.process(timeline);
    if (added.length) timeline.scrollTop = timeline.scrollHeight;
    return added;
  }
  async function catchUp() {
    const el = pane();
    if (!el) return [];
    const html = await getHTML(`${el.dataset.timelineUrl}?after=${lastId()}`);
    return absorb(html);
  }
  async function refreshMessage(id) {
    const el = pane();
    if (!el || !document.getElementById(`m${id}`)) return;
    absorb(await getHTML(el.dataset.messageUrl.replace(/\/0\/$/, `/${id}/`)));
  }
  // One header fetch at a time, and one more if an event came meanwhile: two fetches in flight
  // could finish out of order and leave the older state (say, "Snoozed" after "Resolved").
  let headFetch = null;
  let headAgain = false;
  function refreshHead() {
    if (headFetch) { headAgain = true; return headFetch; }
    headFetch = (async () => {
      try {
        do { headAgain = false; await fetchHead(); } while (headAgain);
      } finally { headFetch = null; }
    })();
    return headFetch;
  }
  async function fetchHead() {
    const el = pane();
    const head = $("#conv-head");
    if (!el || !head) return;
    const html = await getHTML(el.dataset.headUrl);
    // A menu the agent has open stays open through a live update, with what they ticked in it
    // (a colleague's change, or the language found, must not close it under their pointer).
    const key = (input) => `${input.name}=${input.value}`;
    const open = Array.from(head.querySelectorAll("details[open][id]")).map((menu) => ({
      id: menu.id,
      ticked: new Map(Array.from(menu.querySelectorAll("input[type=checkbox]")).map((i) => [key(i), i.checked])),
    }));
    // Focus goes back where it was: by id, or, for a control without one inside an open menu
    // (a label's Apply button), by its place in that menu, so a keyboard user's Enter still lands.
    const controls = (menu) => Array.from(menu.querySelectorAll("button, input, select, textarea, a[href], summary"));
    const active = head.contains(document.activeElement) ? document.activeElement : null;
    const focused = active && active.id ? active.id : "";
    const inMenu = active && !focused ? active.closest("details[open][id]") : null;
    const focusedInMenu = inMenu ? { id: inMenu.id, index: controls(inMenu).indexOf(active) } : null;
    // The head response carries the sidebar out of band; htmx.swap handles both.
    htmx.swap(head, html, { swapStyle: "outerHTML" });
    for (const { id, ticked } of open) {
      const menu = document.getElementById(id);
      if (!menu) continue;
      menu.open = true;
      menu.querySelectorAll("input[type=checkbox]").forEach((input) => {
        if (ticked.has(key(input))) input.checked = ticked.get(key(input));
      });
    }
    if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
    const menu = focusedInMenu && document.getElementById(focusedInMenu.id);
    const control = menu && menu.open ? controls(menu)[focusedInMenu.index] : null;
    if (control) control.focus();
  }

  // --- the list: refresh in place when at the top, otherwise offer to --------------------
  function listPane() { return $("#list-pane"); }
  const refreshList = debounce(() => {
    const list = listPane();
    if (!list) return;
    const scroller = $("#list-scroll");
    const selecting = list.querySelector("input[name=ids]:checked");
    if ((scroller && scroller.scrollTop > 40) || selecting) {
      list.dispatchEvent(new CustomEvent("loket:fresh"));
      return;
    }
    htmx.ajax("GET", list.dataset.listUrl, { target: "#list-pane", swap: "outerHTML" }).then(markCurrent);
  }, 350);
  const refreshCounts = debounce(() => htmx.trigger(document.body, "loket:counts"), 1500);
  function markCurrent() {
    const el = pane();
    document.querySelectorAll(".conv-item.current").forEach((item) => item.classList.remove("current"));
    if (el) {
      const item = document.getElementById(`c${el.dataset.number}`);
      if (item) item.classList.add("current");
    }
  }

  // --- presence: who else views or types in a conversation ------------------------------
  const presence = new Map(); // conversation id → Map(member id → {name, state, until})
  function renderPresence() {
    const box = $("#presence");
    const id = currentId();
    if (!box) return;
    const now = Date.now();
    const people = presence.get(id) || new Map();
    const parts = [];
    for (const [memberId, info] of people) {
      if (info.until < now || memberId === Loket.memberId) { people.delete(memberId); continue; }
      parts.push(info.state === "typing"
        ? text("%s is typing…").replace("%s", info.name)
        : text("%s is viewing").replace("%s", info.name));
    }
    box.textContent = parts.join(" · ");
    box.dataset.people = String(parts.length);
  }
  setInterval(renderPresence, 2000);
  function sayPresence(state) {
    const id = currentId();
    if (id) Loket.send({ type: "presence", conversation_id: id, state: state });
  }
  setInterval(() => { if (!document.hidden) sayPresence("viewing"); }, 20000);
  document.addEventListener("loket:connected", () => sayPresence("viewing"));
  window.addEventListener("beforeunload", () => sayPresence("left"));

  // --- live events ----------------------------------------------------------------------
  document.addEventListener("loket:event", async (event) => {
    const data = event.detail || {};
    const mine = currentId() && data.conversation_id === currentId();
    switch (data.type) {
      case "presence": {
        if (!presence.has(data.conversation_id)) presence.set(data.conversation_id, new Map());
        const people = presence.get(data.conversation_id);
        if (data.state === "left") people.delete(data.member_id);
        else people.set(data.member_id, {
          name: data.name, state: data.state,
          until: Date.now() + (data.state === "typing" ? 6000 : 45000),
        });
        if (data.conversation_id === currentId()) renderPresence();
        return;
      }
      case "message.created":
        if (mine) {
          const added = await catchUp();
          const byOther = added.some((node) => node.tagName === "ARTICLE" && node.dataset.kind !== "note" &&
            node.dataset.author !== String(Loket.memberId));
          if (byOther) document.dispatchEvent(new CustomEvent("loket:conversation-moved"));
          // Someone's message ends their typing.
          const people = presence.get(data.conversation_id);
          if (people && data.actor && people.has(data.actor.id)) {
            people.get(data.actor.id).state = "viewing";
            renderPresence();
          }
        }
        refreshList();
        refreshCounts();
        return;
      case "message.status_changed":
      case "message.updated":
        if (mine) refreshMessage(data.message_id);
        return;
      case "conversation.updated":
        if (mine) { await refreshHead(); await catchUp(); }
        refreshList();
        refreshCounts();
        return;
      case "conversation.created":
        refreshList();
        refreshCounts();
        return;
      case "conversation.sla":  // an SLA due time came close or passed: recolour the chips
        if (mine) await refreshHead();
        refreshList();
        return;
      default:
    }
  });
  document.addEventListener("loket:resync", async () => {
    refreshList();
    refreshCounts();
    if (pane()) { await refreshHead(); await catchUp(); }
  });
  document.body.addEventListener("loket:toast", (event) => Loket.toast(event.detail.text || event.detail.value));
  document.body.addEventListener("htmx:afterSettle", (event) => {
    if (event.detail.target && event.detail.target.id === "conv-slot") {
      markCurrent();
      document.querySelector(".inbox")?.classList.add("has-conversation");
      sayPresence("viewing");
    }
  });
  document.body.addEventListener("htmx:beforeSwap", (event) => {
    if (event.detail.target && event.detail.target.id === "conv-slot") sayPresence("left");
  });

  // --- keyboard shortcuts ---------------------------------------------------------------
  function move(step) {
    const items = Array.from(document.querySelectorAll(".conv-item"));
    if (!items.length) return;
    // The open conversation decides where we are (the list may have re-rendered meanwhile).
    const open = pane() ? pane().dataset.number : null;
    let index = items.findIndex((item) => open ? item.dataset.number === open : item.classList.contains("current"));
    index = index < 0 ? 0 : Math.min(items.length - 1, Math.max(0, index + step));
    const link = items[index].querySelector("a.conv-link");
    items[index].scrollIntoView({ block: "nearest" });
    if (link) link.click();
  }
  function openMenu(id) {
    const menu = document.getElementById(id);
    if (!menu) return;
    menu.open = true;
    const first = menu.querySelector("button, input:not([type=hidden])");
    if (first) first.focus();
  }
  document.addEventListener("loket:shortcut", (event) => {
    const key = event.detail.key;
    if (key === "j") move(1);
    else if (key === "k") move(-1);
    else if (key === "r" || key === "n") {
      const composer = $("#composer");
      if (composer && composer._x_dataStack) composer._x_dataStack[0].setMode(key === "r" ? "reply" : "note");
    } else if (key === "a") openMenu("assign-menu");
    else if (key === "l") openMenu("label-menu");
    else if (key === "e") { const button = $("#resolve-button"); if (button) button.click(); }
  });
  document.addEventListener("click", (event) => { // an email's remote images, on request
    const button = event.target.closest("[data-load-images]");
    if (!button) return;
    const frame = button.closest("article").querySelector("iframe.msg-html");
    if (frame) frame.src += (frame.src.includes("?") ? "&" : "?") + "images=1";
    button.remove();
  });
  document.addEventListener("keydown", (event) => { // Escape closes an open menu, back to its button
    if (event.key !== "Escape" || !event.target.closest) return;
    const menu = event.target.closest(".thread-actions details[open]");
    if (!menu) return;
    menu.open = false;
    menu.querySelector("summary").focus();
  });
  document.addEventListener("click", (event) => { // close an open menu when clicking elsewhere
    document.querySelectorAll(".thread-actions details[open]").forEach((menu) => {
      if (!menu.contains(event.target)) menu.open = false;
    });
  });

  // --- Alpine components ----------------------------------------------------------------
  document.addEventListener("alpine:init", () => {
    Alpine.data("conversationList", () => ({
      selected: [],
      fresh: false,
      init() { this.$root.addEventListener("loket:fresh", () => { this.fresh = true; }); },
      toggle() {
        this.selected = Array.from(this.$root.querySelectorAll("input[name=ids]:checked")).map((box) => box.value);
      },
      selectAll() {
        this.$root.querySelectorAll("input[name=ids]").forEach((box) => { box.checked = true; });
        this.toggle();
      },
      clear() {
        this.$root.querySelectorAll("input[name=ids]").forEach((box) => { box.checked = false; });
        this.selected = [];
      },
      scrolled() { if ($("#list-scroll").scrollTop < 10 && this.fresh) this.refresh(); },
      refresh() {
        this.fresh = false;
        htmx.ajax("GET", this.$root.dataset.listUrl, { target: "#list-pane", swap: "outerHTML" }).then(markCurrent);
      },
    }));

    Alpine.data("conversationPane", () => ({
      sidebarOpen: false,
      init() {
        const timeline = $("#timeline");
        const wanted = new URLSearchParams(location.search).get("message");
        const target = wanted && document.getElementById(`m${wanted}`);
        if (target) { target.classList.add("highlight"); target.scrollIntoView({ block: "center" }); }
        else if (timeline) timeline.scrollTop = timeline.scrollHeight;
        renderPresence();
      },
    }));

    Alpine.data("composer", () => ({
      mode: "reply",
      sending: false,
      status: "",
      fileNames: "",
      mentions: [],
      mentionIndex: 0,
      // Canned replies: "/" at the start of a word in a reply; the list loads on first use.
      canned: [],
      cannedIndex: 0,
      cannedAll: null,
      cannedLoading: null,
      cannedStart: -1,
      cannedNote: "",
      members: [],
      // Suggestions inserted from the panel (their feedback ids), posted with the reply so the
      // server can tell whether it went out as suggested or edited.
      suggested: [],
      seen: 0, // the newest message the agent had seen when they started writing
      typingSentAt: 0,
      // Message templates (WhatsApp): the only reply once the reply window has closed.
      templates: [],
      templatesOnly: false,
      windowClosed: false,
      useTemplate: false,
      chosen: "",
      header: [],
      body: [],
      init() {
        this.members = JSON.parse(($("#composer-members") || { textContent: "[]" }).textContent);
        this.templates = JSON.parse(($("#composer-templates") || { textContent: "[]" }).textContent);
        this.templatesOnly = this.$root.dataset.templatesOnly === "1";
        this.windowClosed = this.$root.dataset.windowClosed === "1";
        this.useTemplate = this.templatesOnly && this.templates.length > 0;
        if (this.templates.length) this.choose(String(this.templates[0].id));
        this.mode = this.$root.dataset.draftKind === "note" ? "note" : "reply";
        this.seen = Number(this.$root.dataset.seen || 0);
        this.saveDraft = debounce(() => this.persistDraft(), 800);
        this.onMoved = () => {
          if (this.$refs.text.value.trim() && this.mode === "reply") {
            this.alert(`<div class="collision" role="status">${escapeHTML(text("New activity in this conversation while you were writing."))}</div>`);
          }
        };
        document.addEventListener("loket:conversation-moved", this.onMoved);
      },
      destroy() { document.removeEventListener("loket:conversation-moved", this.onMoved); },
      setMode(mode) {
        this.mode = mode;
        this.$refs.text.focus();
        this.saveDraft();
      },
      alert(html) { $("#composer-alert").innerHTML = html; },
      template() { return this.templates.find((t) => String(t.id) === this.chosen) || null; },
      choose(id) {
        this.chosen = id;
        const found = this.template();
        this.header = Array(found ? found.header_count : 0).fill("");
        this.body = Array(found ? found.body_count : 0).fill("");
      },
      get preview() {
        const found = this.template();
        if (!found) return "";
        const fill = (source, values) => source.replace(/\{\{\s*(\d+)\s*\}\}/g,
          (whole, n) => values[Number(n) - 1] || whole);
        return [fill(found.header, this.header), fill(found.body, this.body), found.footer]
          .filter((part) => part && part.trim()).join("\n\n");
      },
      alertClick(event) {
        if (event.target.dataset.sendAnyway) this.send(true);
        if (event.target.dataset.dismiss) { this.alert(""); this.seen = lastId(); }
      },
      insert(value) {
        const area = this.$refs.text;
        const start = area.selectionStart;
        area.value = area.value.slice(0, start) + value + area.value.slice(area.selectionEnd);
        area.selectionStart = area.selectionEnd = start + value.length;
        area.focus();
        this.changed();
      },
      // The suggestions panel (_suggestions.html): Insert puts the text at the caret and counts
      // as used; "Not helpful" says so. Both are told to the server, never block the agent.
      async suggestionFeedback(item, verdict, inserted) {
        const form = new FormData();
        form.append("kind", item.dataset.kind);
        form.append("id", item.dataset.id);
        form.append("verdict", verdict);
        if (inserted) form.append("text", inserted);
        const url = item.closest("#suggestions").dataset.feedbackUrl;
        const response = await fetch(url, { method: "POST", body: form, headers: { "X-CSRFToken": Loket.csrf() }, credentials: "same-origin" });
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      },
      async useSuggestion(button) {
        const item = button.closest("[data-suggestion]");
        const value = item.dataset.text;
        const area = this.$refs.text;
        if (this.mode === "reply" && this.useTemplate) this.useTemplate = false;
        // Starting a reply from the suggestion for the newest message: what is there has been seen.
        if (!area.value.trim()) this.seen = lastId();
        if (area.value.trim() && area.selectionStart === area.selectionEnd && area.selectionStart === 0 && document.activeElement !== area) {
          area.selectionStart = area.selectionEnd = area.value.length; // not focused yet: after the text
        }
        this.insert(value);
        item.classList.add("used");
        try {
          const saved = await this.suggestionFeedback(item, "used", value);
          this.suggested.push(saved.id);
        } catch (_) { /* offline: the text is inserted all the same */ }
      },
      async notHelpful(button) {
        const item = button.closest("[data-suggestion]");
        button.disabled = true;
        item.classList.add("dismissed");
        try { await this.suggestionFeedback(item, "wrong"); } catch (_) { button.disabled = false; }
      },
      filesChanged() {
        this.fileNames = Array.from(this.$refs.files.files).map((file) => file.name).join(", ");
      },
      changed() {
        const area = this.$refs.text;
        if (!area.value.trim()) this.seen = lastId();
        const now = Date.now();
        if (area.value && now - this.typingSentAt > 2500) {
          this.typingSentAt = now;
          sayPresence("typing");
        }
        this.status = "";
        this.saveDraft();
        this.findMention();
        this.findCanned();
      },
      findMention() {
        const area = this.$refs.text;
        const before = area.value.slice(0, area.selectionStart);
        const match = this.mode === "note" && before.match(/(?:^|\s)@([^\s@]{0,30})$/);
        if (!match) { this.mentions = []; return; }
        const query = match[1].toLowerCase();
        this.mentions = this.members.filter((m) => m.name.toLowerCase().includes(query) ||
          m.email.toLowerCase().startsWith(query)).slice(0, 6);
        this.mentionIndex = 0;
      },
      pickMention(member) {
        const area = this.$refs.text;
        const cut = area.selectionStart;
        const before = area.value.slice(0, cut).replace(/@([^\s@]{0,30})$/, `@[${member.name.replace(/[[\]]/g, "")}](member:${member.id}) `);
        area.value = before + area.value.slice(cut);
        area.selectionStart = area.selectionEnd = before.length;
        this.mentions = [];
        area.focus();
        this.saveDraft();
      },
      findCanned() {
        const area = this.$refs.text;
        if (this.cannedNote && !area.value.includes("{{")) this.cannedNote = "";
        const before = area.value.slice(0, area.selectionStart);
        const match = this.mode === "reply" && before.match(/(?:^|\s)\/([A-Za-z0-9_-]{0,32})$/);
        if (!match) { this.canned = []; return; }
        if (this.cannedAll === null) { this.loadCanned().then(() => this.findCanned()); return; }
        const query = match[1].toLowerCase();
        this.cannedStart = before.length - match[1].length - 1;
        // Shortcuts starting with what was typed first, then shortcuts and titles containing it;
        // within each, the server's order (the conversation's language first).
        const starts = [];
        const contains = [];
        for (const reply of this.cannedAll) {
          if (reply.shortcut.startsWith(query)) starts.push(reply);
          else if (reply.shortcut.includes(query) || reply.title.toLowerCase().includes(query)) contains.push(reply);
        }
        this.canned = starts.concat(contains).slice(0, 8);
        this.cannedIndex = 0;
      },
      loadCanned() {
        if (!this.cannedLoading) {
          this.cannedLoading = fetch(this.$refs.cannedMenu.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
            .then((response) => (response.ok ? response.json() : { items: [] }))
            .then((data) => { this.cannedAll = data.items || []; })
            .catch(() => { this.cannedAll = []; }) // offline: no menu until the pane reloads
            .finally(() => { this.cannedLoading = null; });
        }
        return this.cannedLoading;
      },
      async pickCanned(reply) {
        const area = this.$refs.text;
        const menu = this.$refs.cannedMenu;
        const start = this.cannedStart;
        const end = area.selectionStart;
        const typed = area.value.slice(start, end);
        this.canned = [];
        let data;
        try {
          const response = await fetch(reply.url, { credentials: "same-origin", headers: { Accept: "application/json" } });
          if (!response.ok) throw new Error(String(response.status));
          data = await response.json();
        } catch (_) {
          this.cannedNote = menu.dataset.textFailed;
          return;
        }
        // Replace the "/shortcut" typed, unless the text changed meanwhile: then insert at the caret.
        let from = start;
        let to = end;
        if (start < 0 || area.value.slice(start, end) !== typed || !typed.startsWith("/")) from = to = area.selectionStart;
        // Set as text: whatever the reply or a contact's details contain stays plain text.
        area.value = area.value.slice(0, from) + data.text + area.value.slice(to);
        area.selectionStart = area.selectionEnd = from + data.text.length;
        area.focus();
        const unknown = data.unknown_variables || [];
        this.cannedNote = unknown.length
          ? menu.dataset.textUnknown.replace("%s", unknown.map((name) => `{{${name}}}`).join(", "))
          : "";
        this.changed();
      },
      keydown(event) {
        if (this.canned.length && this.mode === "reply") {
          if (event.key === "ArrowDown") { event.preventDefault(); this.cannedIndex = (this.cannedIndex + 1) % this.canned.length; return; }
          if (event.key === "ArrowUp") { event.preventDefault(); this.cannedIndex = (this.cannedIndex + this.canned.length - 1) % this.canned.length; return; }
          if ((event.key === "Enter" && !event.ctrlKey && !event.metaKey) || event.key === "Tab") {
            event.preventDefault();
            this.pickCanned(this.canned[this.cannedIndex]);
            return;
          }
          if (event.key === "Escape") { event.preventDefault(); this.canned = []; return; }
        }
        if (this.mentions.length) {
          if (event.key === "ArrowDown") { event.preventDefault(); this.mentionIndex = (this.mentionIndex + 1) % this.mentions.length; return; }
          if (event.key === "ArrowUp") { event.preventDefault(); this.mentionIndex = (this.mentionIndex + this.mentions.length - 1) % this.mentions.length; return; }
          if (event.key === "Enter" || event.key === "Tab") { event.preventDefault(); this.pickMention(this.mentions[this.mentionIndex]); return; }
          if (event.key === "Escape") { this.mentions = []; return; }
        }
        if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
          event.preventDefault();
          this.send();
        }
      },
      async persistDraft() {
        const form = new FormData();
        form.append("text", this.$refs.text.value);
        form.append("kind", this.mode === "note" ? "note" : "message");
        try {
          await fetch(this.$root.dataset.draftUrl, { method: "POST", body: form, headers: { "X-CSRFToken": Loket.csrf() }, credentials: "same-origin" });
          if (this.$refs.text.value.trim()) this.status = text("Draft saved");
        } catch (_) { /* offline: the text stays in the box */ }
      },
      async send(confirmed) {
        if (this.sending) return;
        const form = new FormData(this.$root);
        form.set("kind", this.mode === "note" ? "note" : "message");
        form.set("seen", String(this.seen || lastId()));
        form.set("after", String(lastId()));
        if (confirmed) form.set("confirmed", "1");
        form.delete("suggestion");
        this.suggested.forEach((id) => form.append("suggestion", String(id)));
        this.sending = true;
        try {
          const response = await fetch(this.$root.action, { method: "POST", body: form, headers: { "X-CSRFToken": Loket.csrf(), "HX-Request": "true" }, credentials: "same-origin" });
          const html = await response.text();
          if (response.status === 409 || response.status === 400) {
            this.alert(html);
            if (response.status === 409) catchUp();
            return;
          }
          if (!response.ok) { this.alert(`<div class="collision" role="alert">${escapeHTML(text("Sending failed. Your text is still here; try again."))}</div>`); return; }
          absorb(html);
          if (this.useTemplate) this.choose(this.chosen);
          this.useTemplate = this.templatesOnly && this.templates.length > 0;
          this.$refs.text.value = "";
          this.$refs.files.value = "";
          this.fileNames = "";
          this.cannedNote = "";
          this.suggested = [];
          this.alert("");
          this.seen = lastId();
          this.status = this.mode === "note" ? text("Note added") : text("Sent");
          sayPresence("viewing");
        } catch (_) {
          this.alert(`<div class="collision" role="alert">${escapeHTML(text("Sending failed. Your text is still here; try again."))}</div>`);
        } finally {
          this.sending = false;
        }
      },
    }));
  });

  function escapeHTML(value) {
    const div = document.createElement("div");
    div.textContent = value;
    return div.innerHTML;
  }
})();
