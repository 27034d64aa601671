// Settings → Knowledge base → an article: "Add image" uploads an image into the article and
// puts its Markdown reference at the caret of the text, then lets the preview update. The
// server checks the file; its refusal is shown as it words it.
(() => {
  "use strict";

  document.addEventListener("alpine:init", () => {
    Alpine.data("kbImage", () => ({
      status: "",
      busy: false,

      async upload(event) {
        const input = event.target;
        const file = input.files && input.files[0];
        if (!file) return;
        const area = this.$root.closest("form").querySelector("textarea[name=body]");
        const form = new FormData();
        form.append("file", file);
        this.busy = true;
        this.status = this.$root.dataset.uploading;
        try {
          const response = await fetch(this.$root.dataset.url, {
            method: "POST",
            body: form,
            headers: { "X-CSRFToken": Loket.csrf() },
            credentials: "same-origin",
          });
          const body = await response.json().catch(() => ({}));
          if (!response.ok) {
            this.status = body.error || this.$root.dataset.failed;
            return;
          }
          const start = area.selectionStart ?? area.value.length;
          const end = area.selectionEnd ?? start;
          const before = area.value.slice(0, start);
          const text = (before && !before.endsWith("\n") ? "\n\n" : "") + body.markdown + "\n";
          area.value = before + text + area.value.slice(end);
          area.selectionStart = area.selectionEnd = start + text.length;
          area.dispatchEvent(new Event("input", { bubbles: true }));
          area.focus();
          this.status = this.$root.dataset.added;
        } catch (_) {
          this.status = this.$root.dataset.failed;
        } finally {
          this.busy = false;
          input.value = "";
        }
      },
    }));
  });
})();
