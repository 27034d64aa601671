// Settings → Bot flows → a flow: the step editor and the test panel. The editor edits plain data
// (the draft's JSON, as the API takes it) and writes it into a hidden field on submit; the server
// stores the draft as given and checks it (loket.bots.definition), so nothing here is trusted.
// The test panel posts the draft in the page, with the state of the previous turn, and shows the
// bot's replies: nothing is saved or sent.
(() => {
  "use strict";

  const readJson = (id) => JSON.parse(document.getElementById(id).textContent);
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
  const MAPS = ["headers", "map", "contact", "conversation"];
  const REQUIRED_TEXT = ["message", "choice", "input"];
  let uid = 0;

  const blank = (languages) => Object.fromEntries(languages.map((l) => [l, ""]));

  document.addEventListener("alpine:init", () => {
    Alpine.data("flowEditor", () => ({
      languages: ["en", "nl"],
      language: "en",
      start: "",
      timeout: null,
      steps: [],
      problems: {},
      teams: [],
      outcomes: {},
      types: [],
      validations: [],
      newType: "message",
      raw: false,
      rawText: "",
      rawError: "",
      // the test panel
      chat: [],
      state: null,
      done: "",
      said: "",
      testLanguage: "en",
      busy: false,

      init() {
        const state = readJson("flow-state");
        this.languages = state.languages;
        this.teams = state.teams;
        this.outcomes = state.outcomes || {};
        this.types = state.types;
        this.validations = state.validations;
        this.problems = state.problems || {};
        this.load(state.draft || {});
      },

      // -- the draft <-> the cards --
      load(draft) {
        this.language = draft.language || "en";
        this.testLanguage = this.languages.includes(this.language) ? this.language : "en";
        this.start = draft.start || "";
        this.timeout = draft.timeout ? { minutes: draft.timeout.minutes, next: draft.timeout.next || "" } : null;
        const steps = draft.steps || {};
        this.steps = this.readingOrder(draft).map((id) => ({
          key: ++uid, id, taken: "", step: this.loadStep(steps[id] || {}),
        }));
      },
      // The cards in the draft's "order"; for drafts without one (imported, written by hand):
      // as saved, except that PostgreSQL keeps a JSON object's keys sorted by length, then bytes,
      // and in that order the cards follow the flow from its start instead.
      readingOrder(draft) {
        const steps = draft.steps || {};
        const ids = Object.keys(steps);
        if (Array.isArray(draft.order)) {  // saved with the draft: the order the admin chose
          const listed = draft.order.filter((id) => id in steps);
          return [...listed, ...ids.filter((id) => !listed.includes(id))];
        }
        const sorted = [...ids].sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
        if (ids.length < 3 || ids.some((id, i) => id !== sorted[i])) return ids;
        const seen = [];
        const visit = (id) => {
          if (typeof id !== "string" || !(id in steps) || seen.includes(id)) return;
          seen.push(id);
          const step = steps[id] || {};
          (step.options || []).forEach((o) => visit(o && o.next));
          (step.branches || []).forEach((b) => visit(b && b.next));
          ["next", "fail", "else", "miss"].forEach((key) => visit(step[key]));
        };
        visit(draft.start);
        if (draft.timeout) visit(draft.timeout.next);
        ids.forEach((id) => { if (!seen.includes(id)) seen.push(id); });
        return seen;
      },
      texts(value) {
        const out = blank(this.languages);
        if (typeof value === "string") out[this.language] = value;
        else if (value && typeof value === "object") Object.assign(out, value);
        return out;
      },
      loadStep(raw) {
        const step = JSON.parse(JSON.stringify(raw));
        step.text = this.texts(step.text);
        step.retry_text = this.texts(step.retry_text);
        (step.options || []).forEach((o) => { o.title = this.texts(o.title); o.next = o.next || ""; });
        (step.items || []).forEach((item) => {
          item.answer = this.texts(item.answer);
          item.__keywords = (item.keywords || []).join(", ");
          delete item.keywords;
        });
        (step.branches || []).forEach((b) => {
          b.__if = JSON.stringify(b.if || { match: "all", conditions: [] }, null, 1);
          b.next = b.next || "";
          delete b.if;
        });
        MAPS.forEach((key) => {
          step["__" + key] = Object.entries(step[key] || {}).map(([k, v]) => `${k} = ${v}`).join("\n");
          delete step[key];
        });
        step.__labels = (step.labels || []).join(", ");
        delete step.labels;
        step.__media_url = (step.media && step.media.url) || "";
        step.__media_name = (step.media && step.media.filename) || "";
        delete step.media;
        step.__body = step.body === undefined ? "" : JSON.stringify(step.body, null, 1);
        delete step.body;
        ["next", "fail", "else", "miss"].forEach((key) => { if (step[key] === null || step[key] === undefined) step[key] = ""; });
        ["team_id", "max_attempts", "timeout", "priority"].forEach((key) => { if (step[key] === null || step[key] === undefined) step[key] = ""; });
        if (step.note === undefined) step.note = true;
        return step;
      },
      dumpTexts(value) {
        const out = {};
        Object.entries(value || {}).forEach(([k, v]) => { if (v && v.trim()) out[k] = v; });
        return Object.keys(out).length ? out : null;
      },
      json(text, fallback) {
        try { return text.trim() ? JSON.parse(text) : fallback; } catch (e) { return text; }
      },
      dumpStep(source) {
        const step = JSON.parse(JSON.stringify(source));
        const type = step.type;
        const text = this.dumpTexts(step.text);
        if (text) step.text = text;
        else if (REQUIRED_TEXT.includes(type)) step.text = "";
        else delete step.text;
        const retry = this.dumpTexts(step.retry_text);
        if (retry && ["choice", "input"].includes(type)) step.retry_text = retry;
        else delete step.retry_text;
        (step.options || []).forEach((o) => {
          o.title = this.dumpTexts(o.title) || "";
          if (!o.next) delete o.next;
        });
        (step.items || []).forEach((item) => {
          item.answer = this.dumpTexts(item.answer) || "";
          item.keywords = item.__keywords.split(",").map((s) => s.trim()).filter(Boolean);
          delete item.__keywords;
          if (!item.question) delete item.question;
        });
        (step.branches || []).forEach((b) => {
          b.if = this.json(b.__if, {});
          delete b.__if;
          if (!b.next) b.next = null;
        });
        MAPS.forEach((key) => {
          const lines = (step["__" + key] || "").split("\n").map((l) => l.trim()).filter(Boolean);
          delete step["__" + key];
          if (!lines.length) return;
          step[key] = Object.fromEntries(lines.map((l) => {
            const at = l.indexOf("=");
            return at < 0 ? [l, ""] : [l.slice(0, at).trim(), l.slice(at + 1).trim()];
          }));
        });
        const labels = (step.__labels || "").split(",").map((s) => s.trim()).filter(Boolean);
        delete step.__labels;
        const mediaUrl = (step.__media_url || "").trim();
        const mediaName = (step.__media_name || "").trim();
        delete step.__media_url;
        delete step.__media_name;
        if (mediaUrl && type === "message") step.media = mediaName ? { url: mediaUrl, filename: mediaName } : { url: mediaUrl };
        if (labels.length) step.labels = labels;
        const body = (step.__body || "").trim();
        delete step.__body;
        if (body && type === "http") step.body = this.json(body, null);
        Object.keys(step).forEach((key) => {
          if (key !== "type" && (step[key] === "" || step[key] === null) && !(key === "text" && REQUIRED_TEXT.includes(type))) delete step[key];
        });
        ["team_id", "max_attempts", "timeout", "priority"].forEach((key) => {
          if (key in step && typeof step[key] === "string" && step[key].trim() !== "" && !isNaN(Number(step[key]))) step[key] = Number(step[key]);
        });
        if (type !== "handoff") delete step.note;
        else if (step.note !== false) delete step.note;
        return step;
      },
      draft() {
        const out = { start: this.start, language: this.language, steps: {} };
        if (this.timeout && this.timeout.minutes) {
          out.timeout = { minutes: Number(this.timeout.minutes), next: this.timeout.next || null };
        }
        this.steps.forEach((entry) => { out.steps[entry.id] = this.dumpStep(entry.step); });
        out.order = this.steps.map((entry) => entry.id);  // PostgreSQL does not keep key order
        return out;
      },
      draftJson() {
        return this.raw ? this.rawText : JSON.stringify(this.draft());
      },
      serialise() { this.$refs.draft.value = this.draftJson(); },

      // -- the raw JSON view --
      toggleRaw() {
        if (!this.raw) {
          this.rawText = JSON.stringify(this.draft(), null, 2);
          this.rawError = "";
          this.raw = true;
          return;
        }
        try {
          const parsed = JSON.parse(this.rawText);
          this.load(parsed);
          this.raw = false;
          this.rawError = "";
        } catch (e) {
          this.rawError = e.message;
        }
      },

      // -- editing --
      ids() { return this.steps.map((entry) => entry.id); },
      typeLabel(type) { const t = this.types.find((x) => x.value === type); return t ? t.label : type; },
      linkMissing(target) { return !!target && !this.ids().includes(target); },
      stepProblems(id, kind) { return (this.problems[id] || {})[kind] || []; },
      flowProblems(kind) { return (this.problems[""] || {})[kind] || []; },
      addStep() {
        const type = this.newType;
        let n = this.steps.length + 1;
        while (this.ids().includes(`${type}_${n}`)) n += 1;
        const text = blank(this.languages);
        const step = { type };
        if (type === "message") Object.assign(step, { text, next: "" });
        if (type === "choice") {
          Object.assign(step, {
            text, save_as: "",
            options: [
              { id: "a", title: blank(this.languages), next: "" },
              { id: "b", title: blank(this.languages), next: "" },
            ],
          });
        }
        if (type === "input") Object.assign(step, { text, validate: "text", save_as: "answer", next: "" });
        if (type === "condition") Object.assign(step, { branches: [{ if: { match: "all", conditions: [] }, next: "" }] });
        if (type === "http") Object.assign(step, { url: "https://", method: "GET", timeout: 5, next: "", fail: "" });
        if (type === "faq") Object.assign(step, { items: [{ question: "", keywords: [], answer: "" }], next: "", miss: "" });
        if (["handoff", "close", "set"].includes(type)) Object.assign(step, { text: "" });
        if (type === "set") delete step.text;
        const id = `${type}_${n}`;
        this.steps.push({ key: ++uid, id, taken: "", step: this.loadStep(step) });
        if (!this.start) this.start = id;
        this.$nextTick(() => {
          const card = document.querySelector(`[data-step="${id}"] input`);
          if (card) card.focus();
        });
      },
      removeStep(index) { this.steps.splice(index, 1); },
      move(index, by) {
        const to = index + by;
        if (to < 0 || to >= this.steps.length) return;
        const [entry] = this.steps.splice(index, 1);
        this.steps.splice(to, 0, entry);
      },
      rename(entry, value, input) {
        const old = entry.id;
        const id = value.trim();
        entry.taken = "";
        if (!id || id === old || this.ids().includes(id)) {
          // Two steps with one id would lose one of them: keep the old id.
          input.value = old;
          if (id && id !== old) entry.taken = id;
          return;
        }
        entry.id = id;
        // Every link to the old id follows it.
        const follow = (x) => (x === old ? id : x);
        if (this.start === old) this.start = id;
        if (this.timeout && this.timeout.next === old) this.timeout.next = id;
        this.steps.forEach(({ step }) => {
          ["next", "fail", "else", "miss"].forEach((key) => { if (step[key] === old) step[key] = id; });
          (step.options || []).forEach((o) => { o.next = follow(o.next); });
          (step.branches || []).forEach((b) => { b.next = follow(b.next); });
        });
        if (this.problems[old]) { this.problems[id] = this.problems[old]; delete this.problems[old]; }
      },
      addOption(step) {
        step.options.push({ id: `option_${step.options.length + 1}`, title: blank(this.languages), next: "" });
      },
      addItem(step) { step.items.push({ question: "", __keywords: "", answer: blank(this.languages) }); },
      addBranch(step) { step.branches.push({ __if: '{"match": "all", "conditions": []}', next: "" }); },
      setTimeout(on) { this.timeout = on ? { minutes: 30, next: "" } : null; },

      // -- the test panel --
      restart() {
        this.chat = [];
        this.state = null;
        this.done = "";
        this.turn({});
      },
      sendText() {
        const text = this.said.trim();
        if (!text || this.busy) return;
        this.said = "";
        this.chat.push({ who: "me", text });
        this.turn({ text });
      },
      choose(choice) {
        if (this.busy || this.done) return;
        this.chat.push({ who: "me", text: choice.title });
        this.turn({ choice_id: choice.id, text: choice.title });
      },
      async turn(message) {
        this.busy = true;
        const form = new FormData();
        form.set("draft", this.draftJson());
        form.set("state", this.state ? JSON.stringify(this.state) : "");
        form.set("language", this.testLanguage);
        if (message.text) form.set("text", message.text);
        if (message.choice_id) form.set("choice_id", message.choice_id);
        try {
          const response = await fetch(this.$refs.testPanel.dataset.url, {
            method: "POST", body: form, headers: { "X-CSRFToken": csrf() }, credentials: "same-origin",
          });
          const answer = await response.json();
          if (!response.ok) {
            (answer.errors || []).forEach((text) => this.chat.push({ who: "error", text }));
            return;
          }
          answer.replies.forEach((reply) => {
            this.chat.push({ who: reply.note ? "note" : "bot", text: reply.text, choices: reply.choices || [] });
          });
          this.state = answer.state;
          this.done = answer.done;
        } catch (e) {
          this.chat.push({ who: "error", text: String(e) });
        } finally {
          this.busy = false;
          this.$nextTick(() => {
            const log = this.$refs.chatLog;
            if (log) log.scrollTop = log.scrollHeight;
          });
        }
      },
      lastBot(index) {
        // Choice buttons answer only the latest question.
        for (let i = this.chat.length - 1; i >= 0; i -= 1) {
          if (this.chat[i].who === "bot") return i === index;
          if (this.chat[i].who === "me") return false;
        }
        return false;
      },
    }));
  });
})();
