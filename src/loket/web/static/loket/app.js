/* Loket agent app: the live connection, keyboard shortcuts, toasts and notifications.
   Page scripts listen for DOM events instead of talking to the socket:
     "loket:event"   detail = a realtime event from the server ({type, ...})
     "loket:resync"  the socket reconnected: refresh whatever may have been missed
     "loket:shortcut" detail = {key}  a shortcut the page may handle (j, k, r, n, a, l, e)
   and send with Loket.send({type: ...}). */
(function () {
  "use strict";
  const body = document.body;
  const slug = body.dataset.workspace;
  if (!slug) return;
  const memberId = Number(body.dataset.member);
  const Loket = (window.Loket = {
    memberId: memberId,
    socket: null,
    connected: false,
    send(message) {
      if (Loket.socket && Loket.socket.readyState === WebSocket.OPEN) {
        Loket.socket.send(JSON.stringify(message));
        return true;
      }
      return false;
    },
    toast(text, timeout) {
      const box = document.getElementById("toasts");
      if (!box) return;
      const item = document.createElement("div");
      item.className = "toast";
      item.textContent = text;
      box.appendChild(item);
      setTimeout(() => item.remove(), timeout || 5000);
    },
    csrf() {
      const meta = document.querySelector('meta[name="csrf-token"]');
      return meta ? meta.content : "";
    },
  });

  // --- live connection: reconnects with backoff and asks pages to catch up ---------------
  let attempt = 0;
  let everConnected = false;
  let pingTimer = null;
  const banner = () => document.getElementById("connection");

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/agent/?workspace=${encodeURIComponent(slug)}`);
    Loket.socket = socket;
    socket.addEventListener("open", () => {
      attempt = 0;
      Loket.connected = true;
      if (banner()) banner().hidden = true;
      clearInterval(pingTimer);
      pingTimer = setInterval(() => Loket.send({ type: "ping" }), 25000);
      if (everConnected) document.dispatchEvent(new CustomEvent("loket:resync"));
      everConnected = true;
      document.dispatchEvent(new CustomEvent("loket:connected"));
    });
    socket.addEventListener("message", (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch (_) { return; }
      document.dispatchEvent(new CustomEvent("loket:event", { detail: event }));
      if (event.type === "notification.created" && event.recipient_id === memberId) notify(event);
    });
    socket.addEventListener("close", (close) => {
      Loket.connected = false;
      clearInterval(pingTimer);
      if (close.code === 4401) { location.reload(); return; } // signed out: the page asks to log in
      if (banner()) banner().hidden = false;
      const delay = Math.min(10000, 500 * 2 ** attempt) * (0.75 + Math.random() / 2);
      attempt += 1;
      setTimeout(connect, delay);
    });
  }
  connect();

  // --- notifications: unread badge and (opt-in) browser notifications ---------------------
  function setBadge(count) {
    const badge = document.getElementById("unread-badge");
    if (!badge) return;
    badge.dataset.count = String(count);
    badge.textContent = String(count);
    badge.hidden = count <= 0;
    document.title = document.title.replace(/^\(\d+\) /, "");
    if (count > 0) document.title = `(${count}) ${document.title}`;
  }
  Loket.setBadge = setBadge;
  function notify(event) {
    const badge = document.getElementById("unread-badge");
    setBadge(Number(badge ? badge.dataset.count : 0) + 1);
    const text = event.text || "";
    Loket.toast(text);
    if (body.dataset.notify === "1" && "Notification" in window && Notification.permission === "granted" && document.hidden) {
      const shown = new Notification(event.title || "Loket", { body: text, tag: `loket-${event.id}` });
      shown.onclick = () => { window.focus(); if (event.url) location.href = event.url; };
    }
  }

  // --- keyboard shortcuts ---------------------------------------------------------------
  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    const sheet = document.getElementById("shortcut-sheet");
    if (event.key === "?") {
      event.preventDefault();
      if (sheet && !sheet.open) sheet.showModal();
      return;
    }
    if (event.key === "/") {
      event.preventDefault();
      const box = document.getElementById("search-input");
      if (box) box.focus();
      else location.href = `/w/${slug}/search/`;
      return;
    }
    if (["j", "k", "r", "n", "a", "l", "e"].includes(event.key)) {
      event.preventDefault();
      document.dispatchEvent(new CustomEvent("loket:shortcut", { detail: { key: event.key } }));
    }
  });
})();
