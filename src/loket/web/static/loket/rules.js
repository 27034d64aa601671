// Settings → Rules: the editor for a rule's conditions and actions. It edits plain data (the
// same JSON the API takes) and writes it into hidden fields on submit; the server checks
// everything against its allow-lists, so nothing here is trusted.
(() => {
  "use strict";

  const readJson = (id) => JSON.parse(document.getElementById(id).textContent);

  const blankCondition = () => ({ field: "message.text", operator: "contains", value: "", key: "" });

  document.addEventListener("alpine:init", () => {
    Alpine.data("ruleEditor", () => ({
      catalog: { fields: [], actions: [], triggers: [], options: {} },
      trigger: "",
      minutes: null,
      conditions: { match: "all", conditions: [] },
      actions: [],
      trial: "",

      init() {
        this.catalog = readJson("rule-catalog");
        const state = readJson("rule-state");
        this.trigger = state.trigger;
        this.minutes = state.minutes;
        this.conditions = this.loadGroup(state.conditions || {});
        this.actions = (state.actions || []).map((a) => this.loadAction(a));
      },

      // -- conditions --
      loadGroup(group) {
        return {
          match: group.match === "any" ? "any" : "all",
          conditions: (group.conditions || []).map((item) =>
            item.conditions ? this.loadGroup(item) : this.loadCondition(item)),
        };
      },
      loadCondition(item) {
        const field = this.field(item.field);
        let value = item.value;
        if (field && this.isMulti(field, item.operator)) value = (value || []).map(String);
        else if (field && field.kind === "set") value = (value || []).join(", ");
        else if (value === undefined || value === null) value = "";
        return { field: item.field, operator: item.operator, value, key: item.key || "" };
      },
      field(name) { return this.catalog.fields.find((f) => f.name === name); },
      operators(condition) {
        const field = this.field(condition.field);
        return field ? field.operators : [];
      },
      needsValue(condition) {
        const op = this.operators(condition).find((o) => o.value === condition.operator);
        return op ? op.needs_value : false;
      },
      isMulti(field, operator) {
        return (field.kind === "choice" || (field.kind === "priority" && !["at_least", "at_most"].includes(operator)))
          || (field.kind === "set" && field.values !== "label");
      },
      valueInput(condition) {
        const field = this.field(condition.field);
        if (!field || !this.needsValue(condition)) return "none";
        if (field.kind === "number") return "number";
        if (field.kind === "priority" && ["at_least", "at_most"].includes(condition.operator)) return "one";
        if (this.isMulti(field, condition.operator)) return "many";
        return "text"; // text fields, and label names (comma-separated)
      },
      choices(condition) {
        const field = this.field(condition.field);
        return (field && this.catalog.options[field.values]) || [];
      },
      fieldChanged(condition) {
        const ops = this.operators(condition);
        if (!ops.find((o) => o.value === condition.operator)) condition.operator = ops.length ? ops[0].value : "";
        condition.value = this.valueInput(condition) === "many" ? [] : "";
      },
      operatorChanged(condition) {
        const kind = this.valueInput(condition);
        if (kind === "many" && !Array.isArray(condition.value)) condition.value = [];
        if (kind !== "many" && Array.isArray(condition.value)) condition.value = "";
      },
      addCondition(group) { group.conditions.push(blankCondition()); },
      addGroup() { this.conditions.conditions.push({ match: "any", conditions: [blankCondition()] }); },
      remove(list, index) { list.splice(index, 1); },

      dumpGroup(group) {
        return {
          match: group.match,
          conditions: group.conditions.map((item) => item.conditions ? this.dumpGroup(item) : this.dumpCondition(item)),
        };
      },
      dumpCondition(c) {
        const field = this.field(c.field);
        const out = { field: c.field, operator: c.operator };
        if (field && field.keyed) out.key = c.key.trim();
        const kind = this.valueInput(c);
        if (kind === "none") return out;
        if (kind === "number") out.value = parseInt(c.value, 10);
        else if (kind === "one") out.value = parseInt(c.value, 10);
        else if (kind === "many") {
          const numeric = ["channel", "team", "member", "priority"].includes(field.values);
          out.value = (c.value || []).map((v) => numeric ? parseInt(v, 10) : v);
        } else if (field.kind === "set") out.value = c.value.split(",").map((s) => s.trim()).filter(Boolean);
        else out.value = c.value;
        return out;
      },

      // -- actions --
      actionType(type) { return this.catalog.actions.find((a) => a.type === type); },
      param(action) { const t = this.actionType(action.type); return t ? t.param : ""; },
      loadAction(a) {
        const out = { type: a.type, value: "", values: [], text: a.text || "" };
        const param = this.param(a);
        if (param === "member") out.value = String(a.member_id ?? "");
        if (param === "team") out.value = String(a.team_id ?? "");
        if (param === "labels") out.value = (a.labels || []).join(", ");
        if (param === "priority") out.value = String(a.priority ?? "");
        if (param === "status") out.value = a.status || "";
        if (param === "minutes") out.value = String(a.minutes ?? "");
        if (param === "canned_reply") out.value = String(a.canned_reply_id ?? "");
        if (param === "sla_policy") out.value = String(a.policy_id ?? "");
        if (param === "flow") out.value = String(a.flow_id ?? "");
        if (param === "url") out.value = a.url || "";
        if (param === "notify") out.values = (a.recipients || []).map(String);
        return out;
      },
      addAction() { this.actions.push({ type: "add_labels", value: "", values: [], text: "" }); },
      dumpAction(a) {
        const out = { type: a.type };
        const param = this.param(a);
        const number = (v) => parseInt(v, 10);
        if (param === "member") out.member_id = number(a.value);
        if (param === "team") out.team_id = number(a.value);
        if (param === "labels") out.labels = a.value.split(",").map((s) => s.trim()).filter(Boolean);
        if (param === "priority") out.priority = number(a.value);
        if (param === "status") out.status = a.value;
        if (param === "minutes") out.minutes = number(a.value);
        if (param === "canned_reply") out.canned_reply_id = number(a.value);
        if (param === "sla_policy") out.policy_id = number(a.value);
        if (param === "flow") out.flow_id = number(a.value);
        if (param === "url") out.url = a.value;
        if (param === "text") out.text = a.text;
        if (param === "notify") {
          out.recipients = a.values.map((v) => v === "assignee" ? v : number(v));
          out.text = a.text;
        }
        return out;
      },

      timed() {
        const t = this.catalog.triggers.find((x) => x.value === this.trigger);
        return t ? t.timed : false;
      },
      conditionsJson() { return JSON.stringify(this.dumpGroup(this.conditions)); },
      actionsJson() { return JSON.stringify(this.actions.map((a) => this.dumpAction(a))); },
      serialise() {
        this.$refs.conditions.value = this.conditionsJson();
        this.$refs.actions.value = this.actionsJson();
      },

      async test() {
        const form = new FormData();
        form.set("conversation", this.$refs.trialNumber.value);
        form.set("trigger", this.trigger);
        form.set("conditions", this.conditionsJson());
        form.set("actions", this.actionsJson());
        const token = document.querySelector('meta[name="csrf-token"]').content;
        const response = await fetch(this.$refs.trialForm.dataset.url, {
          method: "POST", body: form, headers: { "X-CSRFToken": token }, credentials: "same-origin",
        });
        this.trial = await response.text();
      },
    }));
  });
})();
