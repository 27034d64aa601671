/* Loket live chat: the widget app inside the iframe (templates/livechat/frame.html).
   Dependency-free ES2017, no build step. Builds the launcher, the chat panel and the pre-chat
   form into #loket, starts or resumes the visitor's session (POST api/session), talks to Loket
   over a websocket (long-poll when websockets cannot open), and talks to the loader on the host
   page with postMessage (resize, event, ready ← → page, command).
   Protocol: src/loket/connectors/livechat/README.md. Message text only ever becomes text nodes
   (links, *bold* and _italic_ are built as DOM nodes, never innerHTML). */
(function () {
  "use strict";
  const root = document.getElementById("loket");
  if (!root || !root.dataset.channel) return;

  const CHANNEL = root.dataset.channel;
  const API = "/widget/" + encodeURIComponent(CHANNEL) + "/api/";
  const WS_URL = (location.protocol === "https:" ? "wss://" : "ws://") + location.host +
    "/ws/widget/" + encodeURIComponent(CHANNEL) + "/";
  const EMBEDDED = window.parent !== window;
  const LOCALE = navigator.language || root.dataset.lang || "en";
  const MAX_TEXT = 4000; // characters; keeps a websocket frame far below 16 KB
  const SIZE = { open: [380, 600], closed: [64, 64], hidden: [0, 0] };

  const TEXTS = {
    launcher_label: "Chat with us",
    title: "Chat with us",
    greeting: "Hi! How can we help?",
    placeholder: "Write a message…",
    send: "Send",
    close: "Close chat",
    online: "Online",
    away: "Away",
    typing: "{name} is typing…",
    seen: "Seen",
    retry: "Retry",
    not_sent: "Not sent.",
    you: "You",
    unread: "{count} unread",
    reconnecting: "Reconnecting…",
    error: "Something went wrong. Please try again.",
    prechat_intro: "Before we start, please tell us who you are.",
    prechat_submit: "Start chat",
    required: "This field is required.",
    invalid_email: "Enter a valid email address.",
    offline_intro: "We're away right now. Leave a message and we'll get back to you.",
    automatic: "Automatic message",
    attach: "Attach a file",
    file_too_large: "This file is too large.",
    file_type: "This kind of file cannot be sent.",
    sending_file: "Sending {name}…",
    csat_question: "How did we do?",
    csat_star: "{n} of 5",
    csat_comment: "Anything to add? (optional)",
    csat_send: "Send rating",
    csat_thanks: "Thank you for your rating!",
    suggestions: "Articles that may help",
    new_tab: "(opens in a new tab)",
    emoji: "Insert an emoji",
  };
  // The emoji picker's choice: common ones, drawn by the visitor's own system font.
  const EMOJI = "😀 😃 😄 😁 😆 😅 😂 🙂 😉 😊 😍 😘 😎 🤔 😐 😕 🙁 😢 😭 😡 😮 😴 🙄 🤗 👍 👎 👌 👏 🙌 🙏 👋 💪 ✌️ 🤞 ❤️ 💔 🎉 🔥 ⭐ ✅ ❌ ❓ ❗ 💡 📦 🚚 💳 📞".split(" ");
  const EMOJI_COLS = 8; // widget.css .lk-emojis

  // ---- state ---------------------------------------------------------------------------
  let token = store("token");
  let visitor = {};
  let config = {};
  let status = {};
  let user = null; // from Loket.setUser, sent with every session call
  let attributes = {}; // from Loket.setAttributes, sent with the next session call
  let page = null; // from the loader
  let ready = false; // a session has been loaded
  let started = false; // the first session call has been made
  let hiddenWidget = true; // nothing shown (before the session, or channel unavailable)
  let isOpen = false;
  let wantOpen = null; // open/close asked for before the session was ready
  let unread = 0;
  let lastReadSent = null;
  const messages = []; // server messages plus the visitor's unconfirmed ones (no id yet)
  const ui = {};

  // ---- small helpers -------------------------------------------------------------------
  const memory = {};
  function store(name, value) {
    const key = "loket:" + CHANNEL + ":" + name;
    try {
      if (value === undefined) return localStorage.getItem(key);
      if (value === null) localStorage.removeItem(key);
      else localStorage.setItem(key, value);
    } catch (e) {
      // storage blocked (some third-party iframe settings): keep it for this page only
      if (value === undefined) return memory[key] || null;
      memory[key] = value;
    }
    return null;
  }

  // Per browser session (tab): the frame's sessionStorage, else this page only.
  function session1(name, value) {
    const key = "loket:" + CHANNEL + ":" + name;
    try {
      if (value === undefined) return sessionStorage.getItem(key);
      sessionStorage.setItem(key, value);
    } catch (e) {
      if (value === undefined) return memory["s:" + key] || null;
      memory["s:" + key] = value;
    }
    return null;
  }

  function t(key, vars) {
    const texts = config.texts || {};
    let text = typeof texts[key] === "string" && texts[key] ? texts[key] : TEXTS[key] || "";
    for (const name in vars || {}) text = text.split("{" + name + "}").join(String(vars[name]));
    return text;
  }

  function h(tag, attrs, children) {
    const el = document.createElement(tag);
    for (const name in attrs || {}) {
      const value = attrs[name];
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") el.className = value;
      else if (name === "text") el.textContent = value;
      else if (name.slice(0, 2) === "on") el.addEventListener(name.slice(2), value);
      else el.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children || []) {
      if (child) el.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return el;
  }

  const ICONS = {
    chat: "M20 2H4a2 2 0 0 0-2 2v18l4-4h14a2 2 0 0 0 2-2V4a2 2 0 0 0-2-2zM6 9h12v2H6zm8 5H6v-2h8zm4-6H6V6h12z",
    close: "M19 6.41 17.59 5 12 10.59 6.41 5 5 6.41 10.59 12 5 17.59 6.41 19 12 13.41 17.59 19 19 17.59 13.41 12z",
    send: "M2.01 21 23 12 2.01 3 2 10l15 2-15 2z",
    emoji: "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 18a8 8 0 1 1 0-16 8 8 0 0 1 0 16zm3.5-9a1.5 1.5 0 1 0 0-3 1.5 1.5 0 0 0 0 3zm-7 0a1.5 1.5 0 1 0 0-3 1.5 1.5 0 0 0 0 3zm3.5 6.5c2.33 0 4.31-1.46 5.11-3.5H6.89c.8 2.04 2.78 3.5 5.11 3.5z",
    attach: "M16.5 6v11.5a4 4 0 0 1-8 0V5a2.5 2.5 0 0 1 5 0v10.5a1 1 0 0 1-2 0V6H10v9.5a2.5 2.5 0 0 0 5 0V5a4 4 0 0 0-8 0v12.5a5.5 5.5 0 0 0 11 0V6z",
  };
  function icon(name) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", "lk-icon");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", ICONS[name]);
    path.setAttribute("fill", "currentColor");
    svg.appendChild(path);
    return svg;
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }
  function jitter(ms) {
    return ms / 2 + Math.random() * ms / 2;
  }

  function uuid() {
    const c = window.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    const b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    const x = Array.from(b, (v) => (v + 256).toString(16).slice(1)).join("");
    return x.slice(0, 8) + "-" + x.slice(8, 12) + "-" + x.slice(12, 16) + "-" + x.slice(16, 20) + "-" + x.slice(20);
  }

  async function api(method, path, body, signal) {
    const headers = { Accept: "application/json" };
    if (token) headers["X-Loket-Visitor"] = token;
    const init = { method: method, headers: headers, credentials: "omit", cache: "no-store", signal: signal };
    if (body instanceof FormData) init.body = body; // multipart: the browser sets the boundary
    else if (body) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(API + path, init);
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    if (!res.ok) {
      const error = (data && data.error) || {};
      const err = new Error(error.message || "HTTP " + res.status);
      err.status = res.status;
      err.code = error.code;
      const retryAfter = Number(res.headers.get("Retry-After"));
      if (retryAfter > 0) err.retryAfter = Math.min(retryAfter, 300) * 1000;
      throw err;
    }
    return data || {};
  }

  // ---- the loader on the host page -----------------------------------------------------
  let parentOrigin = null;
  try {
    const ancestors = location.ancestorOrigins;
    if (ancestors && ancestors.length && ancestors[0] !== "null") parentOrigin = ancestors[0];
    else if (document.referrer) parentOrigin = new URL(document.referrer).origin;
  } catch (e) {
    parentOrigin = null;
  }

  function toParent(message) {
    if (!EMBEDDED) return;
    message.loket = 1;
    // "*" only until the parent's origin is known (the first "ready" on a page without referrer).
    window.parent.postMessage(message, parentOrigin || "*");
  }

  function emit(name, detail) {
    toParent({ type: "event", name: name, detail: detail || {} });
  }

  function resize() {
    const state = hiddenWidget ? "hidden" : isOpen ? "open" : "closed";
    toParent({
      type: "resize", state: state, width: SIZE[state][0], height: SIZE[state][1],
      position: config.position === "left" ? "left" : "right",
    });
  }

  window.addEventListener("message", (event) => {
    if (!EMBEDDED || event.source !== window.parent) return;
    if (parentOrigin && event.origin !== parentOrigin) return;
    const data = event.data;
    if (!data || data.loket !== 1) return;
    parentOrigin = event.origin;
    if (data.type === "page") onPage(data);
    else if (data.type === "command") onCommand(data.name, Array.isArray(data.args) ? data.args : []);
  });

  function clip(value, max) {
    return typeof value === "string" ? value.slice(0, max) : "";
  }

  // The first page starts the session; later ones (SPA navigation) go with each message.
  function onPage(data) {
    page = { url: clip(data.url, 1000), title: clip(data.title, 500), referrer: clip(data.referrer, 1000) };
    pageStart = Date.now(); // time on page restarts on every (SPA) page
    if (!started) start();
    else proactiveCheck();
  }

  function onCommand(name, args) {
    if (name === "open") setOpen(true);
    else if (name === "close") setOpen(false);
    else if (name === "toggle") setOpen(!(ready ? isOpen : wantOpen));
    else if (name === "setUser") setUser(args[0]);
    else if (name === "setAttributes" && args[0] && typeof args[0] === "object") {
      Object.assign(attributes, args[0]);
      if (started) refreshSoon();
    }
  }

  function setUser(value) {
    if (value && typeof value === "object") {
      const next = {};
      for (const key of ["id", "name", "email", "hmac"]) {
        if (value[key] !== undefined && value[key] !== null) next[key] = String(value[key]);
      }
      if (JSON.stringify(next) === JSON.stringify(user)) return; // the same user on every page
      user = next;
    } else {
      // Loket.setUser(null): signed out. A signed-in user's chat must not stay on a shared
      // computer: forget it and start as a new anonymous visitor. Anonymous: nothing changes.
      user = null;
      if (!store("verified")) return;
      setToken(null);
      store("verified", null);
      store("prechat", null);
    }
    switchPending = true;
    if (started) session();
  }

  // ---- session -------------------------------------------------------------------------
  let refreshTimer = null;
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(session, 800);
  }

  function setToken(value) {
    token = value || null;
    store("token", token);
  }

  function start() {
    if (started) return;
    started = true;
    session();
  }

  let sessionRunning = false;
  let sessionAgain = false;
  let switchPending = false; // the next session may be another visitor (setUser)
  async function session() {
    clearTimeout(refreshTimer);
    if (sessionRunning) {
      sessionAgain = true; // setUser or navigation while a call is running: one more after it
      return;
    }
    sessionRunning = true;
    let delay = 1000;
    let switching = false;
    for (;;) {
      switching = switching || switchPending;
      switchPending = false;
      const body = { locale: LOCALE };
      if (token) body.token = token;
      if (page) body.page = page;
      if (user) body.user = user;
      const sent = attributes;
      attributes = {};
      if (Object.keys(sent).length) body.attributes = sent;
      try {
        applySession(await api("POST", "session", body), switching);
        break;
      } catch (err) {
        attributes = Object.assign(sent, attributes);
        if (err.status === 401 && token) {
          setToken(null); // expired or foreign token: start as a new visitor
          switching = true;
          continue;
        }
        if (err.status === 400 || err.status === 403 || err.status === 404) {
          hide(); // channel gone, origin not allowed, or an identity is required
          break;
        }
        await sleep(err.retryAfter || jitter(delay));
        delay = Math.min(delay * 2, 60000);
      }
    }
    sessionRunning = false;
    if (sessionAgain) {
      sessionAgain = false;
      session();
    }
  }

  function applySession(res, switching) {
    const first = !ready;
    setToken(res.token);
    visitor = res.visitor || {};
    config = res.config || {};
    status = res.status || {};
    store("verified", visitor.verified ? "1" : null);
    // Another visitor (setUser, or a refused token): their own history and socket.
    const switched = !first && !!switching;
    if (switched) resetConversation();
    for (const message of res.messages || []) receive(message, false);
    if (first || switched) {
      unread = messages.filter((m) => m.direction === "out" && (m.status === "sent" || m.status === "delivered")).length;
    }
    ready = true;
    hiddenWidget = false;
    applyConfig();
    renderMode();
    if (first || switched) scrollToEnd();
    resize();
    if (wantOpen !== null) {
      const open = wantOpen;
      wantOpen = null;
      setOpen(open);
    } else if (!EMBEDDED && first) {
      setOpen(true);
    }
    connect(switched); // a new socket (or poll) only for a different visitor
    markRead();
    proactiveCheck();
    if (res.csat) showCsat(res.csat);
    else if (ui.csat) ui.csat = ui.csat.remove();
  }

  function hide() {
    if (isOpen) setOpen(false);
    hiddenWidget = true;
    disconnect();
    resize();
  }

  function resetConversation() {
    for (const m of messages) {
      clearTimeout(m._timer);
      if (m._node) m._node.remove();
    }
    messages.length = 0;
    lastReadSent = null;
    unread = 0;
    showTyping(null, false);
    if (ui.seen) ui.seen.remove();
    if (ui.csat) ui.csat = ui.csat.remove();
  }

  // ---- satisfaction rating: a card at the end of the log (README, Satisfaction) ---------
  function showCsat(c) {
    const id = c && c.conversation_id;
    if (!id || (ui.csat && ui.csat._id === id && ui.csat.isConnected)) return;
    if (ui.csat) ui.csat.remove();
    let rating = Number(c.rating) || 0;
    let done = rating > 0;
    const stars = [];
    const comment = h("textarea", { class: "lk-csat-comment", rows: "2", maxlength: 1000, placeholder: t("csat_comment"), "aria-label": t("csat_comment") });
    const error = h("p", { class: "lk-field-error", role: "alert", hidden: true });
    const send = h("button", { type: "submit", class: "lk-button", text: t("csat_send") });
    const thanks = h("p", { class: "lk-csat-thanks", tabindex: "-1" });
    const form = h("form", { onsubmit: async (event) => {
      event.preventDefault();
      if (!rating) return stars[0].focus();
      if (send.disabled) return;
      send.disabled = true;
      error.hidden = true;
      try {
        const res = await api("POST", "csat", { token: token, conversation_id: id, rating: rating, comment: comment.value.trim() || undefined });
        rating = Number(res.rating) || rating;
        done = true;
        render();
        thanks.focus();
      } catch (err) {
        error.textContent = err.code ? err.message : t("error");
        error.hidden = false;
      }
      send.disabled = false;
    } }, [comment, error, send]);
    for (let n = 1; n <= 5; n++) {
      stars.push(h("button", { type: "button", class: "lk-star", "aria-label": t("csat_star", { n: n }), onclick: () => {
        rating = n;
        done = false; // a click after rating: change it (the server may refuse, late)
        render();
      } }));
    }
    function render() {
      stars.forEach((b, i) => {
        b.textContent = i < rating ? "★" : "☆";
        b.setAttribute("aria-pressed", String(i + 1 === rating));
      });
      form.hidden = done;
      thanks.hidden = !done;
      thanks.textContent = done ? t("csat_thanks") : "";
    }
    ui.csat = h("div", { class: "lk-csat", role: "group", "aria-labelledby": "lk-csat-q" }, [
      h("p", { class: "lk-csat-q", id: "lk-csat-q", text: t("csat_question") }),
      h("div", { class: "lk-stars" }, stars), form, thanks,
    ]);
    ui.csat._id = id;
    render();
    ui.log.appendChild(ui.csat);
    scrollToEnd();
  }

  // ---- realtime: websocket, long-poll fallback -----------------------------------------
  let ws = null;
  let wsOpen = false;
  let wsAttempt = 0;
  let openFailures = 0;
  let mode = "ws"; // "ws" or "poll"
  let reconnectTimer = null;
  let pingTimer = null;
  let pongTimer = null;
  let probeTimer = null;
  let pollAbort = null;
  let polling = false;
  let authTrouble = 0; // token rejections in a row (4401 / 401)

  // The token was refused: a new session call sorts it out (and reconnects). Should the
  // socket or poll keep refusing what the session accepts, back off instead of spinning.
  function tokenRejected() {
    authTrouble += 1;
    clearTimeout(reconnectTimer);
    const delay = authTrouble > 1 ? jitter(Math.min(60000, 1000 * Math.pow(2, authTrouble))) : 0;
    reconnectTimer = setTimeout(session, delay);
  }

  function disconnect() {
    clearTimeout(reconnectTimer);
    clearTimeout(probeTimer);
    clearInterval(pingTimer);
    clearTimeout(pongTimer);
    const socket = ws;
    ws = null;
    wsOpen = false;
    if (socket) socket.close();
    if (pollAbort) pollAbort.abort();
  }

  function connect(fresh) {
    if (hiddenWidget || !token) return;
    if (fresh) disconnect();
    if (mode === "poll" || !("WebSocket" in window)) {
      mode = "poll";
      poll();
      return;
    }
    if (ws) return;
    clearTimeout(reconnectTimer);
    let opened = false;
    const socket = new WebSocket(WS_URL + "?token=" + encodeURIComponent(token));
    ws = socket;
    socket.onopen = () => {
      if (socket !== ws) return;
      opened = true;
      wsOpen = true;
      wsAttempt = 0;
      openFailures = 0;
      authTrouble = 0;
      setConnected(true);
      clearInterval(pingTimer);
      pingTimer = setInterval(ping, 25000);
      flushOutbox();
      catchUp();
      lastReadSent = null;
      markRead();
    };
    socket.onmessage = (event) => {
      if (socket !== ws) return;
      clearTimeout(pongTimer);
      onFrame(event.data);
    };
    socket.onclose = (event) => {
      if (socket === ws) socketDown(event.code, opened);
    };
  }

  function ping() {
    if (!wsOpen) return;
    wsSend({ type: "ping" });
    clearTimeout(pongTimer);
    pongTimer = setTimeout(() => {
      // no answer: the connection is dead even if the browser has not noticed yet
      const socket = ws;
      if (!socket) return;
      socketDown(1006, true);
      socket.close();
    }, 10000);
  }

  function socketDown(code, opened) {
    ws = null;
    wsOpen = false;
    clearInterval(pingTimer);
    clearTimeout(pongTimer);
    if (code === 4401) {
      tokenRejected();
      return;
    }
    if (code === 4403 || code === 4404) {
      hide();
      return;
    }
    if (!opened && navigator.onLine !== false) openFailures += 1;
    if (openFailures >= 2) {
      // A proxy or firewall blocks websockets: long-poll, and try a socket again now and then.
      mode = "poll";
      poll();
      flushOutbox();
      clearTimeout(probeTimer);
      probeTimer = setTimeout(probe, 600000);
      return;
    }
    setConnected(false);
    const delay = Math.min(30000, 1000 * Math.pow(2, wsAttempt));
    wsAttempt += 1;
    reconnectTimer = setTimeout(() => connect(false), jitter(code === 4429 ? Math.max(delay, 15000) : delay));
  }

  // From long-poll back to a websocket: one failed open returns to long-poll.
  function probe() {
    if (mode !== "poll" || hiddenWidget || !token || !("WebSocket" in window)) return;
    mode = "ws";
    openFailures = 1;
    if (pollAbort) pollAbort.abort(); // the poll loop ends: mode is no longer "poll"
    connect(false);
  }

  window.addEventListener("online", () => {
    if (!ready || hiddenWidget) return;
    if (mode === "poll") probe();
    else if (!ws) {
      wsAttempt = 0;
      connect(false);
    }
  });

  function wsSend(frame) {
    if (!wsOpen || !ws) return false;
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch (e) {
      return false;
    }
  }

  function onFrame(raw) {
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch (e) {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    if (frame.type === "message") receive(frame.message, true);
    else if (frame.type === "typing") showTyping(frame.name, frame.typing);
    else if (frame.type === "status") setStatus(frame.id, frame.status);
    else if (frame.type === "error") onServerError(frame);
    else if (frame.type === "csat") showCsat({ conversation_id: frame.conversation_id, rating: null });
  }

  function onServerError(frame) {
    // An error about one message names its client_id; without one, fail what is in flight.
    for (const m of messages) {
      if (m._state === "sending" && (!frame.client_id || frame.client_id === m.client_id)) failed(m);
    }
  }

  function lastId() {
    for (let i = messages.length - 1; i >= 0; i--) {
      if (messages[i].id !== undefined && messages[i].id !== null) return messages[i].id;
    }
    return "";
  }

  function handleBatch(res) {
    for (const message of res.messages || []) receive(message, true);
    const typing = res.typing;
    if (typing && typeof typing === "object") showTyping(typing.name, typing.typing !== false);
    else if (typeof typing === "string" && typing) showTyping(typing, true);
    else if (typing === false || typing === null) showTyping(null, false);
    // Long-poll's stand-in for the socket's {type: "csat"}: the same field as the session's.
    if (res.csat) showCsat(res.csat);
    else if (res.csat === null && ui.csat) ui.csat = ui.csat.remove();
  }

  async function catchUp() {
    const current = token;
    try {
      const res = await api("GET", "messages?after=" + encodeURIComponent(lastId()));
      if (current === token) handleBatch(res);
    } catch (e) {
      // the next reconnect tries again
    }
  }

  async function poll() {
    if (polling) return;
    polling = true;
    setConnected(true);
    let delay = 1000;
    while (mode === "poll" && !hiddenWidget && token) {
      const current = token;
      const controller = window.AbortController ? new AbortController() : null;
      pollAbort = controller;
      const timeout = setTimeout(() => controller && controller.abort(), 40000);
      try {
        const res = await api("GET", "messages?after=" + encodeURIComponent(lastId()) + "&wait=25", null,
          controller ? controller.signal : undefined);
        if (current === token) handleBatch(res);
        delay = 1000;
        authTrouble = 0;
        setConnected(true);
      } catch (err) {
        if (err.name === "AbortError") continue; // token switched, or a stuck request
        if (err.status === 401) {
          polling = false;
          tokenRejected();
          return;
        }
        if (err.status === 403 || err.status === 404) {
          hide();
          break;
        }
        setConnected(false);
        await sleep(err.retryAfter || jitter(delay));
        delay = Math.min(delay * 2, 30000);
      } finally {
        clearTimeout(timeout);
      }
    }
    polling = false;
  }

  function setConnected(ok) {
    if (!ui.conn) return;
    ui.conn.hidden = ok;
    ui.conn.textContent = ok ? "" : t("reconnecting");
  }

  // ---- messages ------------------------------------------------------------------------
  const STATUS_RANK = { sent: 1, delivered: 2, read: 3 };
  function laterStatus(a, b) {
    return (STATUS_RANK[b] || 0) > (STATUS_RANK[a] || 0) ? b : a;
  }

  function hasId(m) {
    return m.id !== undefined && m.id !== null;
  }

  function receive(message, live) {
    if (!message || typeof message !== "object" || !hasId(message)) return;
    let m = messages.find((x) => hasId(x) && String(x.id) === String(message.id));
    if (!m && message.client_id) m = messages.find((x) => !hasId(x) && x.client_id === message.client_id);
    if (m) {
      const confirmed = !hasId(m);
      const previous = m.status;
      clearTimeout(m._timer);
      Object.assign(m, message);
      m.status = laterStatus(previous, message.status);
      m._state = null;
      updateMessage(m);
      if (confirmed && live) emit("message", publicMessage(m));
      updateSeen();
      return;
    }
    m = Object.assign({}, message);
    const near = nearBottom();
    // server messages go before the visitor's still unconfirmed ones
    let index = messages.findIndex((x) => !hasId(x));
    if (index < 0) index = messages.length;
    messages.splice(index, 0, m);
    renderMessage(m, messages[index - 1], messages[index + 1]);
    if (m.direction === "out") {
      showTyping(null, false);
      if (live && (!isOpen || document.visibilityState !== "visible")) {
        unread += 1;
        renderBadge();
      }
    }
    if (live) emit("message", publicMessage(m));
    updateChoices();
    updateSeen();
    if (near || m.direction === "in") scrollToEnd();
    markRead();
  }

  function publicMessage(m) {
    return {
      id: m.id, direction: m.direction, text: m.text, created_at: m.created_at,
      author: { name: (m.author && m.author.name) || "" },
    };
  }

  function setStatus(id, value) {
    const m = messages.find((x) => hasId(x) && String(x.id) === String(id));
    if (!m) return;
    m.status = laterStatus(m.status, value);
    updateSeen();
  }

  function sendText(text, choice) {
    const m = {
      client_id: uuid(), direction: "in", text: text, created_at: new Date().toISOString(),
      author: { name: t("you") }, _state: "sending", _page: page || undefined, _choice: choice,
    };
    messages.push(m);
    clearTimeout(suggestTimer);
    showSuggestions([], ""); // only before the first message
    renderMessage(m, messages[messages.length - 2], null);
    updateChoices();
    scrollToEnd();
    deliver(m);
  }

  // Buttons under a question (bot or agent): only while it is the latest message; a tap
  // answers with the option's title as the text and its id as the choice.
  function choiceButtons(m) {
    const items = (Array.isArray(m.choices) ? m.choices : []).filter((c) => c && c.id);
    if (m.direction !== "out" || !items.length) return null;
    return h("div", { class: "lk-choices", role: "group" }, items.map((c) =>
      h("button", { type: "button", class: "lk-choice", text: String(c.title || c.id), onclick: () => {
        m._answered = true;
        updateChoices();
        sendText(String(c.title || c.id), { id: String(c.id), title: String(c.title || "") });
      } })));
  }

  function updateChoices() {
    const last = messages[messages.length - 1];
    for (const m of messages) if (m._choices) m._choices.hidden = m !== last || !!m._answered;
  }

  // The page the visitor was on when they wrote (the backend keeps it with the message).
  function messageFrame(m) {
    return { type: "message", client_id: m.client_id, text: m.text, page: m._page, choice: m._choice };
  }

  function deliver(m) {
    m._state = "sending";
    if (m._file) return upload(m);
    updateMessage(m);
    clearTimeout(m._timer);
    m._timer = setTimeout(() => failed(m), 15000);
    if (wsOpen) wsSend(messageFrame(m));
    else if (mode === "poll") postMessageHttp(m);
    // otherwise the socket is reconnecting: flushOutbox sends it once it is open
  }

  async function postMessageHttp(m) {
    try {
      const res = await api("POST", "messages", { token: token, client_id: m.client_id, text: m.text, page: m._page, choice: m._choice });
      receive(res.message, true);
    } catch (e) {
      failed(m);
    }
  }

  // ---- files: POST api/files (multipart), the same client_id as the echo on the socket ----
  function sendFile(file) {
    const types = config.upload_types || [];
    const error = file.size > config.max_upload_bytes ? t("file_too_large")
      : types.indexOf(String(file.type).toLowerCase()) < 0 ? t("file_type") : "";
    ui.fileError.textContent = error;
    ui.fileError.hidden = !error;
    if (error) return;
    const caption = ui.input.value.trim().slice(0, MAX_TEXT);
    ui.input.value = "";
    autosize();
    visitorTyping(false);
    const m = {
      client_id: uuid(), direction: "in", created_at: new Date().toISOString(),
      author: { name: t("you") }, _file: file, _caption: caption,
    };
    messages.push(m);
    m.text = caption;
    renderMessage(m, messages[messages.length - 2], null);
    scrollToEnd();
    deliver(m);
  }

  async function upload(m) {
    m._error = "";
    m.text = (m._caption ? m._caption + "\n" : "") + t("sending_file", { name: m._file.name });
    updateMessage(m);
    const form = new FormData();
    form.append("token", token);
    form.append("client_id", m.client_id);
    form.append("file", m._file, m._file.name);
    if (m._caption) form.append("text", m._caption);
    try {
      receive((await api("POST", "files", form)).message, true);
    } catch (err) {
      m._error = err.code ? err.message : ""; // the server's reason, else "Not sent."
      m.text = (m._caption ? m._caption + "\n" : "") + m._file.name;
      failed(m);
    }
  }

  function fileSize(n) {
    n = Number(n) || 0;
    let i = 0;
    while (n >= 1024 && i < 3) {
      n /= 1024;
      i++;
    }
    return (i && n < 10 ? n.toFixed(1) : Math.round(n)) + " " + ["B", "KB", "MB", "GB"][i];
  }

  // An attachment: same-origin URLs only, fetched with the visitor's token.
  function attachment(f) {
    let href;
    try {
      const url = new URL(f.url, location.href);
      if (url.origin !== location.origin) return null;
      url.searchParams.set("token", token);
      href = url.href;
    } catch (e) {
      return null;
    }
    const name = String(f.name || "file");
    if (/^image\//i.test(f.content_type)) {
      return h("a", { class: "lk-file lk-thumb", href: href, target: "_blank", rel: "noopener noreferrer" },
        [h("img", { src: href, alt: name, onload: nearBottom() ? scrollToEnd : null })]);
    }
    return h("a", { class: "lk-file", href: href, download: name }, [name, h("span", { class: "lk-size", text: " · " + fileSize(f.size) })]);
  }

  function failed(m) {
    if (m._state !== "sending") return;
    clearTimeout(m._timer);
    m._state = "failed";
    updateMessage(m);
  }

  function flushOutbox() {
    for (const m of messages) {
      if (m._state !== "sending" || m._file) continue;
      if (wsOpen) wsSend(messageFrame(m));
      else if (mode === "poll") postMessageHttp(m);
    }
  }

  function markRead() {
    if (!isOpen || hiddenWidget || document.visibilityState !== "visible") return;
    if (unread) {
      unread = 0;
      renderBadge();
    }
    const last = messages.slice().reverse().find((m) => m.direction === "out" && hasId(m));
    if (!last || last.status === "read" || String(last.id) === String(lastReadSent)) return;
    lastReadSent = last.id;
    if (!wsSend({ type: "read", up_to: last.id })) {
      api("POST", "read", { token: token, up_to: last.id }).catch(() => {
        lastReadSent = null;
      });
    }
  }
  document.addEventListener("visibilitychange", markRead);

  // ---- typing --------------------------------------------------------------------------
  let typingTimer = null;
  function showTyping(name, on) {
    if (!ui.typing) return;
    clearTimeout(typingTimer);
    if (on) {
      ui.typing.textContent = t("typing", { name: name || config.title || t("title") });
      ui.typing.hidden = false;
      typingTimer = setTimeout(() => showTyping(null, false), 8000); // in case "false" never comes
    } else {
      ui.typing.textContent = "";
      ui.typing.hidden = true;
    }
  }

  let typingOn = false;
  let typingSentAt = 0;
  let idleTimer = null;
  function visitorTyping(on) {
    clearTimeout(idleTimer);
    if (on) {
      if (!typingOn || Date.now() - typingSentAt >= 3000) {
        if (wsSend({ type: "typing", typing: true })) typingSentAt = Date.now();
        typingOn = true;
      }
      idleTimer = setTimeout(() => visitorTyping(false), 5000);
    } else if (typingOn) {
      typingOn = false;
      wsSend({ type: "typing", typing: false });
    }
  }

  // ---- article suggestions (README: config.suggest) -------------------------------------
  // While the visitor types their first message: the help center's articles for it (debounced,
  // at least 3 characters, one request at a time). Any failure just shows nothing.
  let suggestTimer = null;
  let suggestBusy = false;
  let suggestFor = "";
  function suggestQuery() {
    const q = ui.input.value.trim().replace(/\s+/g, " ").slice(0, 200);
    return config.suggest && q.length >= 3 && !messages.some((m) => m.direction === "in") ? q : "";
  }
  function suggestSoon() {
    clearTimeout(suggestTimer);
    if (!suggestQuery()) showSuggestions([], "");
    else suggestTimer = setTimeout(fetchSuggestions, 400);
  }
  async function fetchSuggestions() {
    const q = suggestQuery();
    if (suggestBusy || q === suggestFor) return; // a running request checks again when done
    suggestBusy = true;
    let found = [];
    try {
      const stop = window.AbortController ? new AbortController() : null;
      const timer = setTimeout(() => stop && stop.abort(), 5000);
      const res = await fetch(config.suggest + "?q=" + encodeURIComponent(q),
        { credentials: "omit", headers: { Accept: "application/json" }, signal: stop && stop.signal });
      const data = res.ok ? await res.json() : null;
      clearTimeout(timer);
      if (data && Array.isArray(data.results)) found = data.results;
    } catch (e) {
      found = [];
    }
    suggestBusy = false;
    if (suggestQuery() === q) showSuggestions(found, q);
    else suggestSoon(); // typed on meanwhile
  }
  function showSuggestions(items, q) {
    suggestFor = q;
    ui.suggestList.textContent = "";
    for (const r of items.slice(0, 3)) {
      const href = r && typeof r.title === "string" && /^https?:/i.test(String(r.url)) && safeHref(r.url);
      if (!href) continue;
      ui.suggestList.appendChild(h("li", null, [h("a", { href: href, target: "_blank", rel: "noopener noreferrer" }, [
        h("strong", { text: r.title }), h("span", { text: String(r.snippet || "") }), h("span", { class: "lk-sr", text: " " + t("new_tab") }),
      ])]));
    }
    ui.suggest.hidden = !ui.suggestList.firstChild;
  }

  // ---- rendering: text -----------------------------------------------------------------
  const LINK = /\b(?:https?:\/\/|mailto:|www\.)[^\s<>"]+/gi;
  const FORMAT = /(^|[\s([{"'])(?:\*([^\s*](?:[^*\n]*[^\s*])?)\*|_([^\s_](?:[^_\n]*[^\s_])?)_)(?=$|[\s.,;:!?)\]}"'])/g;

  function safeHref(raw) {
    try {
      const url = new URL(/^www\./i.test(raw) ? "https://" + raw : raw);
      return /^(https?|mailto):$/.test(url.protocol) ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function richText(parent, text) {
    let last = 0;
    let match;
    LINK.lastIndex = 0;
    while ((match = LINK.exec(text))) {
      let raw = match[0];
      // trailing punctuation belongs to the sentence, a closing bracket only if unbalanced
      while (/[.,;:!?'")\]]$/.test(raw)) {
        const end = raw.slice(-1);
        if (end === ")" && raw.split("(").length > raw.split(")").length - 1) break;
        raw = raw.slice(0, -1);
      }
      LINK.lastIndex = match.index + raw.length;
      const href = safeHref(raw);
      if (!href) continue;
      formatted(parent, text.slice(last, match.index));
      parent.appendChild(h("a", { href: href, target: "_blank", rel: "noopener noreferrer nofollow", text: raw }));
      last = match.index + raw.length;
    }
    formatted(parent, text.slice(last));
  }

  function formatted(parent, text) {
    let last = 0;
    let match;
    FORMAT.lastIndex = 0;
    while ((match = FORMAT.exec(text))) {
      const start = match.index + match[1].length;
      if (start > last) parent.appendChild(document.createTextNode(text.slice(last, start)));
      const bold = match[2] !== undefined;
      parent.appendChild(h(bold ? "strong" : "em", { text: bold ? match[2] : match[3] }));
      last = FORMAT.lastIndex;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function formatter(options) {
    try {
      return new Intl.DateTimeFormat(LOCALE, options);
    } catch (e) {
      return new Intl.DateTimeFormat(undefined, options);
    }
  }
  const TIME = formatter({ hour: "2-digit", minute: "2-digit" });
  const DATE_TIME = formatter({ day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
  function when(iso) {
    const date = new Date(iso);
    if (isNaN(date.getTime())) return "";
    return (date.toDateString() === new Date().toDateString() ? TIME : DATE_TIME).format(date);
  }

  function initials(name) {
    const parts = String(name || "?").trim().split(/\s+/);
    const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : parts[0].slice(0, 1);
    return (letters || "?").toUpperCase();
  }

  function avatar(author) {
    const box = h("span", { class: "lk-avatar", "aria-hidden": "true" });
    const fallback = () => {
      box.textContent = initials(author.name);
    };
    let src = null;
    try {
      src = author.avatar_url ? safeHref(new URL(author.avatar_url, location.href).href) : null;
    } catch (e) {
      src = null;
    }
    if (src) {
      const img = h("img", { src: src, alt: "", width: 28, height: 28, onerror: fallback });
      box.appendChild(img);
    } else {
      fallback();
    }
    return box;
  }

  // ---- rendering: messages -------------------------------------------------------------
  function sameAuthor(a, b) {
    return !!a && !!b && a.direction === b.direction &&
      ((a.author && a.author.name) || "") === ((b.author && b.author.name) || "");
  }

  function renderMessage(m, before, after) {
    const mine = m.direction === "in";
    const author = m.author || {};
    // Consecutive messages of one author: CSS hides the repeated name and avatar.
    const row = h("div", { class: "lk-row " + (mine ? "lk-mine" : "lk-theirs") + (sameAuthor(before, m) ? " lk-grouped" : "") });
    if (!mine) row.appendChild(avatar(author));
    const col = h("div", { class: "lk-col" });
    col.appendChild(mine ? h("span", { class: "lk-sr", text: t("you") + ": " })
      : h("span", { class: "lk-name" }, [author.name || t("title"), h("span", { class: "lk-sr", text: ": " })]));
    const bubble = h("div", { class: "lk-bubble" });
    richText(bubble, String(m.text || ""));
    col.appendChild(bubble);
    m._files = col.appendChild(h("div", { class: "lk-files" }));
    m._choices = choiceButtons(m);
    if (m._choices) col.appendChild(m._choices);
    m._meta = h("div", { class: "lk-meta" });
    col.appendChild(m._meta);
    row.appendChild(col);
    m._node = row;
    m._bubble = bubble;
    m._text = m.text;
    const next = after && after._node && after._node.parentNode === ui.log ? after._node : null;
    ui.log.insertBefore(row, next);
    if (next) next.classList.toggle("lk-grouped", sameAuthor(m, after));
    updateMessage(m);
  }

  function updateMessage(m) {
    if (!m._node) return;
    m._node.classList.toggle("lk-sending", m._state === "sending");
    m._node.classList.toggle("lk-failed", m._state === "failed");
    if (m.text !== m._text) {
      m._bubble.textContent = "";
      richText(m._bubble, String(m.text || ""));
      m._text = m.text;
    }
    const files = (Array.isArray(m.attachments) ? m.attachments : []).filter((f) => f && f.url);
    const key = files.map((f) => f.id + f.url).join() + token;
    if (m._filesKey !== key) {
      m._filesKey = key;
      m._files.textContent = "";
      for (const f of files) m._files.append(attachment(f) || "");
    }
    m._bubble.hidden = !m.text && files.length > 0;
    const shown = (m._state || "") + "|" + m.created_at + "|" + m._error;
    if (m._shown === shown) return; // rebuilding the meta line would make screen readers repeat it
    m._shown = shown;
    const meta = m._meta;
    meta.textContent = "";
    const time = when(m.created_at);
    if (time) meta.appendChild(h("time", { datetime: m.created_at, text: time }));
    if (m._state === "failed") {
      meta.appendChild(h("span", { class: "lk-error", text: " " + (m._error || t("not_sent")) + " " }));
      meta.appendChild(h("button", { type: "button", class: "lk-retry", text: t("retry"), onclick: () => {
        deliver(m);
        ui.input.focus();
      } }));
    }
  }

  function updateSeen() {
    if (!ui.seen) return;
    const last = messages.slice().reverse().find((m) => m.direction === "in" && hasId(m));
    const lastMine = messages.slice().reverse().find((m) => m.direction === "in");
    if (last && last === lastMine && last.status === "read" && last._node) {
      ui.seen.textContent = t("seen");
      last._node.querySelector(".lk-col").appendChild(ui.seen);
    } else {
      ui.seen.remove();
    }
  }

  function nearBottom() {
    const log = ui.log;
    return !log || log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  }
  function scrollToEnd() {
    if (ui.log) ui.log.scrollTop = ui.log.scrollHeight;
  }

  function renderBadge() {
    ui.badge.hidden = unread <= 0;
    ui.badge.textContent = unread > 9 ? "9+" : String(unread);
    ui.launcher.setAttribute("aria-label", t("launcher_label") + (unread > 0 ? " (" + t("unread", { count: unread }) + ")" : ""));
  }

  // ---- configuration, status, pre-chat form --------------------------------------------
  function parseColor(value) {
    const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(String(value || "").trim());
    if (!m) return null;
    const hex = m[1].length === 3 ? m[1].replace(/./g, "$&$&") : m[1];
    return [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16));
  }
  function luminance(rgb) {
    const [r, g, b] = rgb.map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }

  function applyConfig() {
    const rgb = parseColor(config.color);
    if (rgb) {
      root.style.setProperty("--lk-accent", "rgb(" + rgb.join(",") + ")");
      // white or near-black text on the accent, whichever contrasts more
      const l = luminance(rgb);
      root.style.setProperty("--lk-on-accent", (1.05 / (l + 0.05) >= (l + 0.05) / 0.0625) ? "#fff" : "#111827");
    }
    root.classList.toggle("lk-left", config.position === "left");
    const title = config.title || t("title");
    ui.title.textContent = title;
    ui.panel.setAttribute("aria-label", title);
    const greeting = config.greeting || t("greeting");
    // inside the live log: rewriting the same text would have it read out again
    if (ui.greetingText.textContent !== greeting) ui.greetingText.textContent = greeting;
    ui.greeting.hidden = !greeting;
    ui.input.setAttribute("placeholder", t("placeholder"));
    ui.input.setAttribute("aria-label", t("placeholder"));
    ui.suggestTitle.textContent = t("suggestions");
    ui.send.setAttribute("aria-label", t("send"));
    const types = config.upload_types || [];
    ui.attach.setAttribute("aria-label", t("attach"));
    ui.attach.setAttribute("title", t("attach"));
    ui.attach.hidden = !types.length;
    for (const el of [ui.emoji, ui.emojis]) el.setAttribute("aria-label", t("emoji"));
    ui.emoji.setAttribute("title", t("emoji"));
    ui.file.setAttribute("accept", types.join(","));
    ui.send.setAttribute("title", t("send"));
    ui.close.setAttribute("aria-label", t("close"));
    ui.close.setAttribute("title", t("close"));
    ui.brand.hidden = !config.branding;
    renderPhotos();
    renderStatus();
    renderBadge();
  }

  // config.team_photos: up to 3 same-origin image URLs, decorative (the title names the header)
  function renderPhotos() {
    const urls = (Array.isArray(config.team_photos) ? config.team_photos : []).slice(0, 3).map((u) => {
      try {
        const url = new URL(u, location.href);
        return url.origin === location.origin ? url.href : null;
      } catch (e) {
        return null;
      }
    }).filter(Boolean);
    const key = urls.join(" ");
    if (ui.photos.dataset.key === key) return; // unchanged: don't reload the images
    ui.photos.dataset.key = key;
    ui.photos.textContent = "";
    for (const src of urls) {
      const img = h("img", { src: src, alt: "", width: 28, height: 28, onerror: () => img.remove() });
      ui.photos.appendChild(img);
    }
  }

  function renderStatus() {
    const online = status.online !== false;
    ui.statusDot.className = "lk-dot" + (online ? " lk-online" : "");
    ui.statusText.textContent = (online ? t("online") : t("away")) + (status.reply_time ? " · " + status.reply_time : "");
    ui.notice.textContent = online ? "" : t("offline_intro");
    ui.notice.hidden = online;
  }

  function prechatNeeded() {
    const prechat = config.prechat || {};
    if (!prechat.enabled || visitor.verified || visitor.prechat_done || store("prechat")) return false;
    if (messages.some((m) => m.direction === "in")) return false;
    const fields = (prechat.fields || []).filter((f) => f && f.name);
    if (!fields.length) return false;
    return fields.some((f) => f.required && !visitor[f.name]) || !(visitor.name || visitor.email);
  }

  function renderMode() {
    const need = prechatNeeded();
    if (need && !ui.prechat.firstChild) buildPrechat();
    ui.prechat.hidden = !need;
    ui.composer.hidden = need;
    if (need) showEmojis(false);
  }

  const AUTOCOMPLETE = { name: "name", email: "email", phone: "tel", tel: "tel", company: "organization" };
  function buildPrechat() {
    const fields = ((config.prechat || {}).fields || []).filter((f) => f && f.name);
    ui.prechat.appendChild(h("p", { class: "lk-intro", text: t("prechat_intro") }));
    ui.fields = fields.map((field, i) => {
      const id = "lk-field-" + i;
      const type = field.type === "email" || field.type === "tel" ? field.type : "text";
      const input = h("input", {
        id: id, name: field.name, type: type, required: !!field.required, "aria-required": field.required ? "true" : null,
        autocomplete: AUTOCOMPLETE[field.name] || AUTOCOMPLETE[type] || "on", "aria-describedby": id + "-error",
        maxlength: 200, value: typeof visitor[field.name] === "string" ? visitor[field.name] : null,
        spellcheck: type === "text" ? null : "false",
        oninput: () => fieldError(entry, ""),
      });
      const entry = { field: field, input: input, error: h("p", { class: "lk-field-error", id: id + "-error", hidden: true }) };
      ui.prechat.appendChild(h("div", { class: "lk-field" }, [
        h("label", { for: id }, [field.label || field.name, field.required ? h("span", { "aria-hidden": "true", text: " *" }) : null]),
        input, entry.error,
      ]));
      return entry;
    });
    ui.prechatError = h("p", { class: "lk-field-error", role: "alert", hidden: true });
    ui.prechatSubmit = h("button", { type: "submit", class: "lk-button", text: t("prechat_submit") });
    ui.prechat.appendChild(ui.prechatError);
    ui.prechat.appendChild(ui.prechatSubmit);
  }

  function fieldError(entry, text) {
    entry.error.textContent = text;
    entry.error.hidden = !text;
    if (text) entry.input.setAttribute("aria-invalid", "true");
    else entry.input.removeAttribute("aria-invalid");
  }

  async function submitPrechat(event) {
    event.preventDefault();
    if (ui.prechatSubmit.disabled) return;
    let firstBad = null;
    const body = { token: token };
    const extra = {};
    for (const entry of ui.fields) {
      const value = entry.input.value.trim();
      let error = "";
      if (entry.field.required && !value) error = t("required");
      else if (value && entry.input.type === "email" && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value)) error = t("invalid_email");
      fieldError(entry, error);
      if (error && !firstBad) firstBad = entry.input;
      if (!value) continue;
      if (["name", "email", "phone"].indexOf(entry.field.name) >= 0) body[entry.field.name] = value;
      else extra[entry.field.name] = value;
    }
    if (firstBad) {
      firstBad.focus();
      return;
    }
    if (Object.keys(extra).length) body.fields = extra;
    ui.prechatError.hidden = true;
    ui.prechatSubmit.disabled = true;
    try {
      const res = await api("POST", "prechat", body);
      if (res.token) setToken(res.token); // the new token carries the answers
      visitor = Object.assign(visitor, res.visitor || {});
      store("prechat", "1");
      renderMode();
      ui.input.focus();
    } catch (err) {
      ui.prechatError.textContent = err.status === 400 && err.message ? err.message : t("error");
      ui.prechatError.hidden = false;
    } finally {
      ui.prechatSubmit.disabled = false;
    }
  }

  // ---- proactive messages ---------------------------------------------------------------
  // config.proactive: [{id, message, url_contains, seconds_on_page, returning_only}]. At most
  // one fires per browser session, only while the visitor has no messages and the panel is
  // closed; closing the panel after it dismisses that rule (id + message hash) for good.
  let pageStart = Date.now();
  let proactiveTimer = null;
  let proactiveShown = null;
  const visits = (function () {
    let n = Number(store("visits")) || 0;
    if (!session1("visited")) {
      session1("visited", "1");
      n += 1;
      store("visits", String(n));
    }
    return n || 1;
  })();

  function ruleKey(rule) {
    let hash = 5381;
    const text = String(rule.message);
    for (let i = 0; i < text.length; i++) hash = (hash * 33 + text.charCodeAt(i)) | 0;
    return rule.id + ":" + (hash >>> 0).toString(36);
  }
  function dismissedRules() {
    try {
      const list = JSON.parse(store("proactive_dismissed") || "[]");
      return Array.isArray(list) ? list : [];
    } catch (e) {
      return [];
    }
  }

  function proactiveCheck() {
    clearTimeout(proactiveTimer);
    const rules = Array.isArray(config.proactive) ? config.proactive : [];
    if (!ready || hiddenWidget || isOpen || wantOpen || !rules.length || messages.length) return;
    if (session1("proactive")) return;
    const url = String((page && page.url) || "").toLowerCase();
    const dismissed = dismissedRules();
    let wait = Infinity;
    for (const rule of rules) {
      if (!rule || typeof rule.message !== "string" || !rule.message) continue;
      if (dismissed.indexOf(ruleKey(rule)) >= 0 || (rule.returning_only && visits < 2)) continue;
      const part = String(rule.url_contains || "").toLowerCase();
      if (part && url.indexOf(part) < 0) continue;
      const left = (Number(rule.seconds_on_page) || 0) * 1000 - (Date.now() - pageStart);
      if (left <= 0) return fireProactive(rule);
      wait = Math.min(wait, left);
    }
    if (wait < Infinity) proactiveTimer = setTimeout(proactiveCheck, wait + 50);
  }

  function fireProactive(rule) {
    session1("proactive", ruleKey(rule));
    proactiveShown = rule;
    setOpen(true, false, true); // no focus taken from the host page
    // An agent-style bubble, marked automatic, never sent to Loket; text nodes only. Added
    // after the panel shows, so the polite live log announces it.
    const name = config.title || t("title");
    const bubble = h("div", { class: "lk-bubble" }, [String(rule.message)]);
    const row = h("div", { class: "lk-row lk-theirs lk-auto" }, [
      avatar({ name: name }),
      h("div", { class: "lk-col" }, [
        h("span", { class: "lk-name" }, [name, h("span", { class: "lk-sr", text: " (" + t("automatic") + "): " })]),
        bubble,
        h("div", { class: "lk-meta", "aria-hidden": "true", text: t("automatic") }),
      ]),
    ]);
    setTimeout(() => {
      ui.log.insertBefore(row, ui.greeting.nextSibling);
      scrollToEnd();
    }, 50);
    emit("proactive", { id: rule.id });
  }

  function dismissProactive() {
    if (!proactiveShown) return;
    const list = dismissedRules().concat([ruleKey(proactiveShown)]).slice(-20);
    store("proactive_dismissed", JSON.stringify(list));
    proactiveShown = null;
  }

  // ---- open / close, focus, keyboard ---------------------------------------------------
  const coarse = window.matchMedia && window.matchMedia("(pointer: coarse)").matches;

  function setOpen(open, fromUser, quiet) {
    if (!ready || hiddenWidget) {
      wantOpen = open;
      return;
    }
    if (open === isOpen) return;
    isOpen = open;
    ui.launcher.setAttribute("aria-expanded", String(open));
    if (open) {
      resize(); // the iframe grows first
      ui.panel.hidden = false;
      ui.launcher.hidden = true;
      unread = 0;
      renderBadge();
      renderMode();
      scrollToEnd();
      clearTimeout(proactiveTimer);
      // Touch screens: focus the dialog, not the textarea (no keyboard popping up unasked).
      // Opened proactively: no focus at all (the host page keeps it).
      const target = coarse ? ui.panel : ui.composer.hidden ? ui.prechat.querySelector("input") : ui.input;
      if (!quiet) (target || ui.panel).focus();
      markRead();
      emit("opened");
    } else {
      const hadFocus = document.hasFocus() && ui.panel.contains(document.activeElement);
      visitorTyping(false);
      showEmojis(false);
      ui.panel.hidden = true;
      ui.launcher.hidden = false;
      resize();
      dismissProactive();
      if (hadFocus || fromUser) ui.launcher.focus();
      emit("closed");
    }
  }

  function focusable() {
    return Array.from(ui.panel.querySelectorAll("a[href], button, input, textarea, [tabindex]"))
      .filter((el) => !el.disabled && el.tabIndex >= 0 && el.getClientRects().length);
  }

  document.addEventListener("keydown", (event) => {
    if (!isOpen) return;
    if (event.key === "Escape") {
      event.preventDefault();
      if (!ui.emojis.hidden) showEmojis(false, ui.emojis.contains(document.activeElement));
      else setOpen(false, true);
    } else if (event.key === "Tab") {
      const items = focusable();
      if (!items.length) return;
      const first = items[0];
      const last = items[items.length - 1];
      const active = document.activeElement;
      if (event.shiftKey && (active === first || !ui.panel.contains(active) || active === ui.panel)) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && (active === last || !ui.panel.contains(active))) {
        event.preventDefault();
        first.focus();
      }
    }
  });

  function autosize() {
    ui.input.style.height = "auto";
    ui.input.style.height = Math.min(ui.input.scrollHeight, 132) + "px";
  }

  // ---- emoji picker: a grid of buttons above the composer; arrows move, Escape closes -----
  function showEmojis(open, refocus) {
    if (ui.emojis.hidden === !open) return;
    ui.emojis.hidden = !open;
    ui.emoji.setAttribute("aria-expanded", String(open));
    if (open) {
      Array.from(ui.emojis.children, (b, i) => (b.tabIndex = i ? -1 : 0));
      ui.emojis.firstChild.focus();
    }
    else if (refocus) ui.emoji.focus();
  }

  function insertEmoji(text) {
    const input = ui.input;
    const start = input.selectionStart;
    const end = input.selectionEnd;
    if (input.value.length - (end - start) + text.length <= MAX_TEXT) {
      input.setRangeText(text, start, end, "end");
      input.dispatchEvent(new Event("input")); // size, typing, suggestions
    }
    showEmojis(false);
    input.focus();
  }

  function emojiKey(event) {
    const items = Array.from(ui.emojis.children);
    const at = items.indexOf(document.activeElement);
    const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: EMOJI_COLS, ArrowUp: -EMOJI_COLS }[event.key];
    let next = step ? at + step : event.key === "Home" ? 0 : event.key === "End" ? items.length - 1 : -1;
    if (next < 0 || next >= items.length || at < 0) return;
    event.preventDefault();
    items[at].tabIndex = -1;
    items[next].tabIndex = 0;
    items[next].focus();
  }

  function submitComposer(event) {
    event.preventDefault();
    showEmojis(false);
    const text = ui.input.value.trim();
    if (!text) return;
    ui.input.value = "";
    autosize();
    visitorTyping(false);
    sendText(text.slice(0, MAX_TEXT));
    ui.input.focus();
  }

  // ---- build ---------------------------------------------------------------------------
  function build() {
    ui.badge = h("span", { class: "lk-badge", "aria-hidden": "true", hidden: true });
    ui.launcher = h("button", {
      type: "button", class: "lk-launcher", "aria-expanded": "false", "aria-controls": "lk-panel",
      "aria-label": t("launcher_label"), onclick: () => setOpen(true, true),
    }, [icon("chat"), ui.badge]);

    ui.title = h("h2", { class: "lk-title", id: "lk-title" });
    ui.statusDot = h("span", { class: "lk-dot", "aria-hidden": "true" });
    ui.statusText = h("span");
    ui.close = h("button", { type: "button", class: "lk-close", onclick: () => setOpen(false, true) }, [icon("close")]);
    ui.photos = h("span", { class: "lk-photos" });
    const head = h("header", { class: "lk-head" }, [
      ui.photos,
      h("div", { class: "lk-head-text" }, [ui.title, h("p", { class: "lk-status" }, [ui.statusDot, ui.statusText])]),
      ui.close,
    ]);

    ui.notice = h("p", { class: "lk-notice", hidden: true });
    ui.conn = h("p", { class: "lk-conn", role: "status", hidden: true });
    ui.greetingText = h("div", { class: "lk-bubble" });
    ui.greeting = h("div", { class: "lk-row lk-theirs lk-greeting" }, [h("div", { class: "lk-col" }, [ui.greetingText])]);
    ui.log = h("div", { class: "lk-log", role: "log", "aria-live": "polite", "aria-labelledby": "lk-title", tabindex: "0" },
      [ui.greeting]);
    ui.seen = h("p", { class: "lk-seen" });
    ui.typing = h("p", { class: "lk-typing", "aria-live": "polite", hidden: true });

    ui.prechat = h("form", { class: "lk-prechat", novalidate: true, hidden: true, onsubmit: submitPrechat });
    ui.input = h("textarea", {
      class: "lk-input", rows: "1", maxlength: MAX_TEXT, enterkeyhint: "send",
      oninput: () => {
        autosize();
        visitorTyping(ui.input.value.trim() !== "");
        suggestSoon();
      },
      onkeydown: (event) => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
          submitComposer(event);
        }
      },
    });
    ui.send = h("button", { type: "submit", class: "lk-send" }, [icon("send")]);
    ui.file = h("input", { type: "file", hidden: true, tabindex: "-1", onchange: () => {
      for (const file of ui.file.files) sendFile(file);
      ui.file.value = "";
      ui.input.focus();
    } });
    ui.attach = h("button", { type: "button", class: "lk-attach", onclick: () => ui.file.click() }, [icon("attach")]);
    ui.emoji = h("button", { type: "button", class: "lk-attach lk-emoji", "aria-expanded": "false", "aria-controls": "lk-emojis",
      onclick: () => showEmojis(ui.emojis.hidden) }, [icon("emoji")]);
    ui.emojis = h("div", { class: "lk-emojis", id: "lk-emojis", role: "group", hidden: true, onkeydown: emojiKey },
      EMOJI.map((e, i) => h("button", { type: "button", tabindex: i ? "-1" : "0", text: e, onclick: () => insertEmoji(e) })));
    ui.fileError = h("p", { class: "lk-field-error lk-file-error", role: "alert", hidden: true });
    ui.composer = h("form", { class: "lk-composer", onsubmit: submitComposer }, [ui.attach, ui.emoji, ui.file, ui.input, ui.send]);
    ui.suggestTitle = h("p", { class: "lk-suggest-title", id: "lk-suggest-title" });
    ui.suggestList = h("ul");
    ui.suggest = h("section", { class: "lk-suggest", "aria-labelledby": "lk-suggest-title", hidden: true }, [ui.suggestTitle, ui.suggestList]);
    ui.brand = h("p", { class: "lk-brand", hidden: true, text: "Powered by Loket" });

    ui.panel = h("div", { class: "lk-panel", id: "lk-panel", role: "dialog", "aria-modal": "true", tabindex: "-1", hidden: true }, [
      head, ui.notice, ui.conn, ui.log, ui.typing, ui.prechat, ui.fileError, ui.suggest, ui.emojis, ui.composer, ui.brand,
    ]);
    root.appendChild(ui.launcher);
    root.appendChild(ui.panel);
  }

  build();
  // Pasted or dropped files go out like picked ones; a file dropped anywhere else in the
  // frame must not navigate it away.
  function dropped(event, list) {
    const files = Array.from((list && list.files) || []);
    if (files.length || (event.type === "drop" && event.target !== ui.input)) event.preventDefault();
    if (!ui.composer.hidden && !ui.attach.hidden && isOpen) files.forEach(sendFile);
  }
  ui.input.addEventListener("paste", (event) => dropped(event, event.clipboardData));
  document.addEventListener("click", (event) => {
    if (!ui.emojis.contains(event.target) && !ui.emoji.contains(event.target)) showEmojis(false);
  });
  document.addEventListener("dragover", (event) => event.preventDefault());
  document.addEventListener("drop", (event) => dropped(event, event.dataTransfer));
  if (EMBEDDED) {
    toParent({ type: "ready" });
    // The loader answers "ready" with queued commands, then "page"; start anyway if it is silent.
    setTimeout(start, 1500);
  } else {
    start(); // opened directly (no host page): a full-page chat
  }
})();
