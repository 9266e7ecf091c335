/* The carers' web chat: the stock Rasa web widgets' socket.io protocol, with nothing kept
   beyond this tab. sessionStorage (not localStorage) holds the session id and transcript so
   that a reload keeps the conversation but closing the tab forgets it; "End chat" and
   "Leave this site quickly" clear both storages at once. */
(function () {
  "use strict";

  var SESSION_KEY = "linechat.session_id";
  var TRANSCRIPT_KEY = "linechat.transcript";
  var meta = function (name) {
    var el = document.querySelector('meta[name="' + name + '"]');
    return el ? el.getAttribute("content") : "";
  };
  var socketUrl = meta("webchat-socket-url");
  var exitUrl = meta("quick-exit-url") || "https://www.bbc.co.uk/weather";

  var transcriptEl = document.getElementById("transcript");
  var statusEl = document.getElementById("status");
  var form = document.getElementById("composer");
  var input = document.getElementById("message");
  var sendBtn = document.getElementById("send");
  var endBtn = document.getElementById("end-chat");
  var newBtn = document.getElementById("new-chat");
  var quickExit = document.getElementById("quick-exit");

  var socket = null;
  var sessionId = null;
  var entries = [];

  function storage(kind) {
    // Private modes and locked-down browsers may refuse storage; the chat still works,
    // it just does not survive a reload.
    try { return window[kind]; } catch (e) { return null; }
  }
  function save() {
    var s = storage("sessionStorage");
    if (!s) return;
    try {
      if (sessionId) s.setItem(SESSION_KEY, sessionId);
      s.setItem(TRANSCRIPT_KEY, JSON.stringify(entries));
    } catch (e) { /* storage full or refused: keep going without persistence */ }
  }
  function forgetEverything() {
    ["sessionStorage", "localStorage"].forEach(function (kind) {
      var s = storage(kind);
      if (s) { try { s.clear(); } catch (e) { /* nothing more we can do */ } }
    });
    entries = [];
    sessionId = null;
  }

  function setStatus(text) { statusEl.textContent = text; }

  function render(entry) {
    var li = document.createElement("li");
    li.className = "msg " + entry.who;
    if (entry.who !== "notice") {
      var who = document.createElement("span");
      who.className = "who";
      who.textContent = entry.who === "me" ? "You" :
        entry.who === "staff" ? (entry.name ? entry.name + " (staff)" : "Member of staff") :
        "Assistant (automated)";
      li.appendChild(who);
    }
    var text = document.createElement("span");
    text.className = "text";
    // textContent, never innerHTML: replies are shown as text, whatever they contain.
    text.textContent = entry.text;
    li.appendChild(text);
    if (entry.quick && entry.quick.length && !entry.answered) {
      var box = document.createElement("div");
      box.className = "quick-replies";
      entry.quick.forEach(function (q) {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "secondary";
        b.textContent = q.title;
        b.addEventListener("click", function () {
          entry.answered = true;
          box.remove();
          send(q.title, q.payload);
        });
        box.appendChild(b);
      });
      li.appendChild(box);
    }
    transcriptEl.appendChild(li);
    transcriptEl.scrollTop = transcriptEl.scrollHeight;
  }

  function add(entry) {
    entries.push(entry);
    render(entry);
    save();
  }

  function send(shown, payload) {
    if (!socket || !sessionId) return;
    socket.emit("user_uttered", { message: payload || shown, session_id: sessionId });
    add({ who: "me", text: shown });
  }

  function connect() {
    setStatus("Connecting…");
    // Polling first, then upgrade to WebSocket: works through proxies that block WebSocket.
    socket = io(socketUrl, { path: "/socket.io", reconnectionDelayMax: 10000 });
    socket.on("connect", function () {
      var s = storage("sessionStorage");
      socket.emit("session_request", { session_id: (s && s.getItem(SESSION_KEY)) || null });
    });
    socket.on("session_confirm", function (id) {
      if (sessionId && id !== sessionId) {
        // The server did not know our conversation: start clean rather than mix two.
        transcriptEl.textContent = "";
        entries = [];
      }
      sessionId = typeof id === "string" ? id : (id && id.session_id) || null;
      save();
      sendBtn.disabled = false;
      setStatus("Connected. The assistant is automated.");
    });
    socket.on("bot_uttered", function (msg) {
      if (!msg) return;
      var staff = msg.sender === "staff";
      var text = msg.text || (msg.attachment ? "(an attachment was sent)" : "");
      if (!text) return;
      add({
        who: staff ? "staff" : "assistant",
        name: staff ? (msg.sender_name || "") : "",
        text: text,
        quick: (msg.quick_replies || []).map(function (q) {
          return { title: q.title, payload: q.payload };
        })
      });
    });
    socket.on("disconnect", function () {
      sendBtn.disabled = true;
      setStatus("Connection lost. Trying again…");
    });
    socket.on("connect_error", function () {
      sendBtn.disabled = true;
      setStatus("Cannot reach the chat right now. If someone is in danger, call 999.");
    });
  }

  function restore() {
    var s = storage("sessionStorage");
    if (!s) return;
    try {
      entries = JSON.parse(s.getItem(TRANSCRIPT_KEY) || "[]") || [];
    } catch (e) { entries = []; }
    entries.forEach(render);
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    send(text);
    input.value = "";
    input.focus();
  });
  input.addEventListener("keydown", function (ev) {
    // Enter sends, Shift+Enter starts a new line (as in most chat boxes).
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit"));
    }
  });

  endBtn.addEventListener("click", function () {
    if (socket) { socket.disconnect(); socket = null; }
    forgetEverything();
    transcriptEl.textContent = "";
    // Shown, not stored: after "End chat" the browser holds nothing from the conversation.
    render({ who: "notice", text: "Chat ended. Nothing from it is kept in this browser." });
    sendBtn.disabled = true;
    input.disabled = true;
    endBtn.hidden = true;
    newBtn.hidden = false;
    setStatus("Chat ended.");
    newBtn.focus();
  });
  newBtn.addEventListener("click", function () {
    transcriptEl.textContent = "";
    input.disabled = false;
    newBtn.hidden = true;
    endBtn.hidden = false;
    connect();
    input.focus();
  });

  quickExit.addEventListener("click", function (ev) {
    ev.preventDefault();
    try { if (socket) socket.disconnect(); } catch (e) { /* leaving anyway */ }
    forgetEverything();
    transcriptEl.textContent = "";
    // replace(): this page leaves the tab's history, so Back does not return to it.
    window.location.replace(exitUrl);
  });

  sendBtn.disabled = true;
  restore();
  // Announce new messages only after restoring the old ones, so a reload does not read the
  // whole conversation out again. role="log" is a polite live region.
  transcriptEl.setAttribute("role", "log");
  transcriptEl.setAttribute("aria-live", "polite");
  if (typeof io !== "function") {
    setStatus("The chat could not load. If someone is in danger, call 999.");
    return;
  }
  connect();
}());
