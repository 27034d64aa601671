/* Loket live chat: the loader a host page embeds as /widget/<channel uuid>.js.
   The backend serves this file with Loket's origin and the channel uuid substituted for the
   two placeholders in the constants below (plain text replacement). It defines only
   window.Loket, adds one <iframe> (the widget, /widget/<uuid>/frame/) at the end of <body>,
   styles it inline with !important so no host CSS reaches it, resizes it when the frame asks,
   tells the frame which page it is on, and forwards the JavaScript API to it.
   Protocol: see src/loket/connectors/livechat/README.md.

   Optional inline stub, so a page can call the API before this script has loaded:
     <script>
       window.Loket = window.Loket || {q: []};
       ["open", "close", "toggle", "setUser", "setAttributes", "on"].forEach(function (m) {
         Loket[m] = Loket[m] || function () { Loket.q.push([m].concat([].slice.call(arguments))); };
       });
     </script>
   (Loket.q.push(["setUser", {...}]) works too, before and after loading.) */
(function () {
  "use strict";
  var ORIGIN = "__LOKET_ORIGIN__";
  var CHANNEL = "__CHANNEL__";
  var previous = window.Loket;
  if (previous && previous.loaded) return; // the script was included twice

  var METHODS = ["open", "close", "toggle", "setUser", "setAttributes"];
  var iframe = null;
  var ready = false;
  var pending = []; // commands waiting for the frame's "ready"
  var listeners = {};
  var layout = { state: "hidden", width: 0, height: 0 };
  var lastUrl = null;

  function css(props) {
    for (var name in props) iframe.style.setProperty(name, props[name], "important");
  }

  function place() {
    if (!iframe) return;
    var vv = window.visualViewport;
    var open = layout.state === "open";
    var full = open && window.innerWidth < 480; // phones: the open chat takes the whole screen
    var left = layout.position === "left";
    var card = open && !full;
    css({
      // full screen follows the visual viewport, so the on-screen keyboard cannot cover the composer
      top: full ? (vv ? vv.offsetTop : 0) + "px" : "auto",
      bottom: full ? "auto" : "16px",
      left: full ? "0" : left ? "16px" : "auto",
      right: full || left ? "auto" : "16px",
      width: full ? "100%" : layout.width + "px",
      height: full ? (vv ? vv.height + "px" : "100%") : layout.height + "px",
      "max-width": full ? "none" : "calc(100% - 32px)",
      "max-height": full ? "none" : "calc(100% - 32px)",
      "border-radius": card ? "12px" : "0",
      "box-shadow": card ? "0 8px 32px rgba(16, 24, 40, .24)" : "none",
    });
    // above the home indicator on notched phones; ignored where env() is not understood
    if (!full) css({ bottom: "calc(16px + env(safe-area-inset-bottom, 0px))" });
  }

  function post(message) {
    if (!iframe || !iframe.contentWindow) return;
    message.loket = 1;
    iframe.contentWindow.postMessage(message, ORIGIN);
  }

  function sendPage() {
    lastUrl = location.href;
    post({ type: "page", url: location.href, title: document.title, referrer: document.referrer });
  }

  function command(name, args) {
    var message = { type: "command", name: name, args: args };
    try {
      message.args = JSON.parse(JSON.stringify(args)); // only plain data crosses to the frame
    } catch (e) {
      return;
    }
    if (ready) post(message);
    else pending.push(message);
  }

  function emit(name, detail) {
    (listeners[name] || []).slice().forEach(function (fn) {
      try {
        fn(detail);
      } catch (e) {
        setTimeout(function () { throw e; }); // report without breaking the loader
      }
    });
  }

  function onMessage(event) {
    if (!iframe || event.origin !== ORIGIN || event.source !== iframe.contentWindow) return;
    var data = event.data;
    if (!data || data.loket !== 1) return;
    if (data.type === "ready") {
      ready = true;
      var queued = pending;
      pending = [];
      queued.forEach(post);
      sendPage(); // after the commands: the frame starts its session on the first "page"
    } else if (data.type === "resize") {
      var shown = data.state === "open" || data.state === "closed";
      layout = {
        state: shown ? data.state : "hidden", position: data.position,
        width: shown ? Math.min(+data.width || 0, 4000) : 0, height: shown ? Math.min(+data.height || 0, 4000) : 0,
      };
      place();
    } else if (data.type === "event" && typeof data.name === "string") {
      emit(data.name, data.detail);
    }
  }

  // SPA navigation: wrap whatever pushState/replaceState are now (the host's own wrappers
  // included), keeping `this`, the arguments and the return value.
  function urlMaybeChanged() {
    setTimeout(function () {
      if (ready && location.href !== lastUrl) sendPage();
    }, 50); // let the app update document.title first
  }
  ["pushState", "replaceState"].forEach(function (name) {
    var original = history[name];
    if (typeof original !== "function") return;
    history[name] = function () {
      var result = original.apply(this, arguments);
      urlMaybeChanged();
      return result;
    };
  });
  window.addEventListener("popstate", urlMaybeChanged);
  window.addEventListener("hashchange", urlMaybeChanged);
  window.addEventListener("message", onMessage);
  window.addEventListener("resize", place);
  if (window.visualViewport) {
    window.visualViewport.addEventListener("resize", place);
    window.visualViewport.addEventListener("scroll", place);
  }

  function mount() {
    if (iframe) return;
    iframe = document.createElement("iframe");
    iframe.setAttribute("title", "Chat");
    // lang: the frame page's <html lang>, the language the widget's texts will be in
    iframe.setAttribute("src", ORIGIN + "/widget/" + CHANNEL + "/frame/?lang=" + encodeURIComponent(navigator.language || ""));
    // Every property back to its initial value (opacity 1, no transform, filter, margin...), then ours.
    css({ all: "initial" });
    css({ display: "block", position: "fixed", "z-index": "2147483000", border: "0", background: "transparent",
      "color-scheme": "normal" });
    place();
    document.body.appendChild(iframe);
  }

  var api = {
    loaded: true,
    on: function (name, fn) {
      if (typeof fn === "function") (listeners[name] = listeners[name] || []).push(fn);
    },
    q: { push: function (item) { run(item); } },
  };
  METHODS.forEach(function (name) {
    api[name] = function () {
      command(name, Array.prototype.slice.call(arguments));
    };
  });
  function run(item) {
    if (item && typeof api[item[0]] === "function") {
      api[item[0]].apply(null, Array.prototype.slice.call(item, 1));
    }
  }
  window.Loket = api;
  if (previous && previous.q && previous.q.forEach) previous.q.forEach(run);

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
