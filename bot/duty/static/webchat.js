/* The carers' web chat: the stock Rasa web widgets' socket.io protocol, with nothing kept
   beyond this tab. sessionStorage (not localStorage) holds the session id and transcript so
   that a reload keeps the conversation but closing the tab forgets it; "End chat" and
   "Leave this site quickly" clear both storages at once.

   Nothing is lost on a bad connection. A message is sent only on a live, confirmed session
   and counts as sent only when the server acknowledges it; until then it stays in the
   transcript marked "not sent yet" (kept across a reload) and goes when the session is back.
   Every reply has an id; on reconnect the page says the last one it has and the server sends
   what came after (replies and staff messages written while the page was away). */
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
  var logEl = document.getElementById("conversation") || transcriptEl;
  var statusEl = document.getElementById("status");
  var form = document.getElementById("composer");
  var input = document.getElementById("message");
  var sendBtn = document.getElementById("send");
  var endBtn = document.getElementById("end-chat");
  var newBtn = document.getElementById("new-chat");
  var quickExit = document.getElementById("quick-exit");
  var planBtn = document.getElementById("my-plan");

  var socket = null;
  var sessionId = null;
  var confirmed = false;  // session_confirm received on the current connection
  var entries = [];
  var seen = {};          // message ids already shown
  var pendingEls = {};    // client id -> the "not sent yet" note of that message
  var quickBoxes = [];    // the choices on screen not answered yet: {entry, box}
  var ACK_TIMEOUT_MS = 15000;

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
      s.setItem(TRANSCRIPT_KEY, JSON.stringify(entries.map(function (e) {
        var copy = {};
        Object.keys(e).forEach(function (k) { if (k !== "inflight") copy[k] = e[k]; });
        return copy;
      })));
    } catch (e) { /* storage full or refused: keep going without persistence */ }
  }
  function forgetEverything() {
    ["sessionStorage", "localStorage"].forEach(function (kind) {
      var s = storage(kind);
      if (s) { try { s.clear(); } catch (e) { /* nothing more we can do */ } }
    });
    entries = [];
    seen = {};
    pendingEls = {};
    quickBoxes = [];
    sessionId = null;
    confirmed = false;
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
    if (entry.who === "me" && entry.pending) {
      var note = document.createElement("span");
      note.className = "pending-note";
      note.textContent = "Not sent yet. It will be sent when the connection is back.";
      li.appendChild(note);
      pendingEls[entry.cid] = note;
    }
    if (entry.plan) {
      // The person's own plan (docs/plan.md): shown whole, with print and copy buttons
      // reached by Tab and pressed with Enter or Space.
      li.classList.add("plan");
      li.appendChild(planTools(li, entry.text));
    }
    if (entry.quick && entry.quick.length && !entry.answered) {
      // Buttons in a named group, reached by keyboard (Shift+Tab from the message box) and
      // pressed with Enter or Space like any button.
      var box = document.createElement("div");
      box.className = "quick-replies";
      box.setAttribute("role", "group");
      box.setAttribute("aria-label", "Choices");
      entry.quick.forEach(function (q) {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "secondary";
        b.textContent = q.title;
        b.addEventListener("click", function () {
          send(q.title, q.payload);
          // The pressed button has gone: keep the keyboard in the conversation, in the
          // message box, from where the next question's choices are one Shift+Tab away.
          input.focus();
        });
        box.appendChild(b);
      });
      li.appendChild(box);
      quickBoxes.push({ entry: entry, box: box });
    }
    transcriptEl.appendChild(li);
    logEl.scrollTop = logEl.scrollHeight;
  }

  function planTools(li, text) {
    var tools = document.createElement("div");
    tools.className = "plan-tools";
    tools.setAttribute("role", "group");
    tools.setAttribute("aria-label", "Your plan");
    var said = document.createElement("span");
    said.className = "plan-said";
    said.setAttribute("role", "status");
    var print = document.createElement("button");
    print.type = "button";
    print.className = "secondary";
    print.textContent = "Print my plan";
    print.addEventListener("click", function () {
      // Only this message is printed (webchat.css, @media print).
      document.body.classList.add("printing-plan");
      li.classList.add("print-this");
      var done = function () {
        document.body.classList.remove("printing-plan");
        li.classList.remove("print-this");
        window.removeEventListener("afterprint", done);
      };
      window.addEventListener("afterprint", done);
      window.print();
      print.focus();
    });
    var copy = document.createElement("button");
    copy.type = "button";
    copy.className = "secondary";
    copy.textContent = "Copy my plan";
    copy.addEventListener("click", function () {
      var fallback = function () {
        // No clipboard access (an old browser, or not allowed): select the plan's words so
        // Ctrl+C (or the phone's Copy) takes them.
        var range = document.createRange();
        range.selectNodeContents(li.querySelector(".text"));
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        said.textContent = "Your plan is selected: press Ctrl+C, or Copy, to copy it.";
      };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(function () {
          said.textContent = "Your plan is copied.";
        }, fallback);
      } else {
        fallback();
      }
    });
    tools.appendChild(print);
    tools.appendChild(copy);
    tools.appendChild(said);
    return tools;
  }

  function add(entry) {
    entries.push(entry);
    if (entry.id) seen[entry.id] = true;
    render(entry);
    save();
  }

  function live() {
    return !!(socket && socket.connected && confirmed && sessionId);
  }

  function newClientId() {
    var a = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function lastMessageId() {
    for (var i = entries.length - 1; i >= 0; i--) {
      if (entries[i].id) return entries[i].id;
    }
    return null;
  }

  function pendingCount() {
    return entries.filter(function (e) { return e.who === "me" && e.pending; }).length;
  }

  function markSent(entry) {
    entry.pending = false;
    var note = pendingEls[entry.cid];
    if (note) { note.remove(); delete pendingEls[entry.cid]; }
    save();
  }

  // Send every message not sent yet, in order, if the session is live. Each one stays
  // "not sent yet" until the server acknowledges it; without an acknowledgement it is sent
  // again (with the same client id, so the server takes it once) when the session is back.
  function flush() {
    if (!live()) return;
    entries.forEach(function (entry) {
      if (entry.who !== "me" || !entry.pending || entry.inflight) return;
      entry.inflight = true;
      socket.timeout(ACK_TIMEOUT_MS).emit("user_uttered", {
        message: entry.payload || entry.text, session_id: sessionId, client_id: entry.cid
      }, function (err, ack) {
        entry.inflight = false;
        if (!err && ack && ack.ok) { markSent(entry); showState(); return; }
        if (!err && ack && ack.error === "empty") { markSent(entry); return; }
        showState();
        if (live()) setTimeout(flush, 3000);
      });
    });
  }

  // Choices answer the question they came with: once the person has said anything (a
  // button, or words typed), earlier buttons go, so none is pressed for a later question.
  function retireChoices() {
    quickBoxes.forEach(function (q) {
      q.entry.answered = true;
      q.box.remove();
    });
    quickBoxes = [];
  }

  function send(shown, payload) {
    retireChoices();
    add({ who: "me", text: shown, payload: payload || shown, cid: newClientId(), pending: true });
    flush();
    showState();
  }

  function showState() {
    if (!socket) return;
    var waiting = pendingCount();
    if (live()) {
      setStatus(waiting ? "Sending…" : "Connected. The assistant is automated.");
    } else if (waiting) {
      setStatus("Not connected. Your message is not sent yet; it will be sent when the " +
                "connection is back. If someone is in danger now, call 999.");
    }
  }

  function connect() {
    setStatus("Connecting…");
    // Polling first, then upgrade to WebSocket: works through proxies that block WebSocket.
    socket = io(socketUrl, { path: "/socket.io", reconnectionDelayMax: 10000 });
    function requestSession() {
      var s = storage("sessionStorage");
      var stored = (s && s.getItem(SESSION_KEY)) || null;
      var ask = { session_id: stored };
      // Ask for what was said while this page was away (all of it when it has no reply yet).
      if (stored) ask.last_message_id = lastMessageId();
      socket.emit("session_request", ask);
    }
    socket.on("connect", function () {
      confirmed = false;
      requestSession();
    });
    socket.on("session_confirm", function (id) {
      id = typeof id === "string" ? id : (id && id.session_id) || null;
      if (sessionId && id !== sessionId) {
        // The server did not know our conversation: start clean rather than mix two, but
        // keep what the person wrote and has not been sent yet.
        entries = entries.filter(function (e) { return e.who === "me" && e.pending; });
        transcriptEl.textContent = "";
        seen = {};
        pendingEls = {};
        quickBoxes = [];
        entries.forEach(render);
      }
      sessionId = id;
      confirmed = true;
      save();
      showState();
      flush();
    });
    socket.on("session_refused", function (why) {
      var wait = (why && why.retry_after_s) || 30;
      setStatus("Too many new chats have been started from this connection. Trying again in " +
                wait + " seconds. If someone is in danger now, call 999.");
      setTimeout(function () { if (socket && socket.connected) requestSession(); }, wait * 1000);
    });
    socket.on("bot_uttered", function (msg) {
      if (!msg) return;
      if (msg.message_id && seen[msg.message_id]) return;  // already shown (a replay)
      var staff = msg.sender === "staff";
      var text = msg.text || (msg.attachment ? "(an attachment was sent)" : "");
      if (!text) return;
      add({
        who: staff ? "staff" : "assistant",
        id: msg.message_id || null,
        name: staff ? (msg.sender_name || "") : "",
        text: text,
        plan: !!msg.plan && !staff,
        quick: (msg.quick_replies || []).map(function (q) {
          return { title: q.title, payload: q.payload };
        })
      });
    });
    socket.on("disconnect", function () {
      confirmed = false;
      setStatus("Connection lost. Trying again… Anything you write is kept and sent when " +
                "the connection is back. If someone is in danger now, call 999.");
    });
    socket.on("connect_error", function () {
      confirmed = false;
      setStatus("Cannot reach the chat right now. Anything you write is kept and sent when " +
                "the connection is back. If someone is in danger, call 999.");
    });
  }

  function restore() {
    var s = storage("sessionStorage");
    if (!s) return;
    try {
      entries = JSON.parse(s.getItem(TRANSCRIPT_KEY) || "[]") || [];
    } catch (e) { entries = []; }
    entries.forEach(function (e) {
      if (e.id) seen[e.id] = true;
      render(e);
    });
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
    if (planBtn) planBtn.disabled = true;
    endBtn.hidden = true;
    newBtn.hidden = false;
    setStatus("Chat ended.");
    newBtn.focus();
  });
  newBtn.addEventListener("click", function () {
    transcriptEl.textContent = "";
    input.disabled = false;
    sendBtn.disabled = false;
    if (planBtn) planBtn.disabled = false;
    newBtn.hidden = true;
    endBtn.hidden = false;
    connect();
    input.focus();
  });

  if (planBtn) {
    // "My plan": the same as typing PLAN (the plan is sent back, or offered to be made).
    planBtn.addEventListener("click", function () {
      if (input.disabled) return;
      send("My plan", "PLAN");
      input.focus();
    });
  }

  quickExit.addEventListener("click", function (ev) {
    ev.preventDefault();
    try { if (socket) socket.disconnect(); } catch (e) { /* leaving anyway */ }
    forgetEverything();
    transcriptEl.textContent = "";
    // replace(): this page leaves the tab's history, so Back does not return to it.
    window.location.replace(exitUrl);
  });

  restore();
  // Announce new messages only after restoring the old ones, so a reload does not read the
  // whole conversation out again. role="log" is a polite live region; it is on the box
  // around the list, so the list keeps its list semantics.
  logEl.setAttribute("role", "log");
  logEl.setAttribute("aria-live", "polite");
  if (typeof io !== "function") {
    setStatus("The chat could not load. If someone is in danger, call 999.");
    return;
  }
  connect();
}());
