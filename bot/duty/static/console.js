/* Live queue: re-reads /duty/queue.json every few seconds and redraws the table, announcing
   newly arrived escalations to screen readers. Read-only: it never POSTs, so it needs no CSRF
   token. Every value is inserted as text, never as HTML. */
(function () {
  "use strict";
  var POLL_MS = 3000;
  var LABELS = { imminent: "Imminent risk", urgent: "Urgent", support: "Wants a person" };
  var table = document.getElementById("queue");
  if (!table) return;
  var body = document.getElementById("queue-body");
  var updated = document.getElementById("queue-updated");
  var announce = document.getElementById("queue-announce");
  var linked = table.getAttribute("data-link") === "yes";
  var known = {};
  Array.prototype.forEach.call(body.querySelectorAll("tr[data-ref]"), function (tr) {
    known[tr.getAttribute("data-ref")] = true;
  });

  function cell(tr, content) {
    var td = document.createElement("td");
    if (content instanceof Node) td.appendChild(content); else td.textContent = content;
    tr.appendChild(td);
  }
  function waited(s) { return Math.floor(s / 60) + " min " + (s % 60) + " s"; }

  function draw(rows) {
    var fresh = [];
    var next = {};
    body.textContent = "";
    if (!rows.length) {
      var tr = document.createElement("tr");
      var td = document.createElement("td");
      td.colSpan = 5; td.textContent = "Nobody is waiting.";
      tr.appendChild(td); body.appendChild(tr);
    }
    rows.forEach(function (row) {
      next[row.ref] = true;
      if (!known[row.ref]) fresh.push(row);
      var tr = document.createElement("tr");
      tr.className = "level-" + row.level;
      tr.setAttribute("data-ref", row.ref);
      var badge = document.createElement("span");
      badge.className = "badge level-" + row.level;
      badge.textContent = LABELS[row.level] || row.level;
      cell(tr, badge);
      if (linked) {
        var a = document.createElement("a");
        a.href = "/duty/e/" + encodeURIComponent(row.ref);
        a.textContent = row.ref;
        cell(tr, a);
      } else {
        cell(tr, row.ref);
      }
      cell(tr, waited(row.waiting_seconds));
      cell(tr, row.channel);
      cell(tr, row.status);
      body.appendChild(tr);
    });
    known = next;
    if (fresh.length) {
      announce.textContent = fresh.map(function (r) {
        return "New: " + (LABELS[r.level] || r.level) + ", " + r.ref;
      }).join(". ");
    }
    updated.textContent = "Updated " + new Date().toLocaleTimeString("en-GB");
  }

  function poll() {
    fetch("/duty/queue.json", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (resp) {
        if (resp.status === 401) { window.location.assign("/login"); return null; }
        if (!resp.ok) throw new Error("HTTP " + resp.status);
        return resp.json();
      })
      .then(function (data) { if (data) draw(data.escalations); })
      .catch(function () { updated.textContent = "Cannot refresh the queue; retrying."; })
      .then(function () { window.setTimeout(poll, POLL_MS); });
  }
  window.setTimeout(poll, POLL_MS);
}());

/* Live transcript on a conversation page: polls /duty/e/{ref}/messages.json for messages
   after the last one shown, so the person's messages and staff replies appear without a
   reload (a reload is a new, audited opening of the transcript; the polls are not). The
   reply form is sent with fetch() for the same reason, and the reply then arrives through
   the poll, from the transcript, as the person received it. Every value is inserted as text. */
(function () {
  "use strict";
  var POLL_MS = 2000;
  var list = document.getElementById("transcript");
  if (!list) return;
  var ref = list.getAttribute("data-ref");
  var after = parseInt(list.getAttribute("data-after"), 10) || 0;
  var live = list.getAttribute("data-live") === "yes";
  var updated = document.getElementById("transcript-updated");
  var announce = document.getElementById("transcript-announce");
  var statusEl = document.getElementById("esc-status");
  var empty = document.getElementById("transcript-empty");
  var url = "/duty/e/" + encodeURIComponent(ref) + "/messages.json";
  var seen = {};
  Array.prototype.forEach.call(list.querySelectorAll("li[data-seq]"), function (li) {
    seen[li.getAttribute("data-seq")] = true;
  });

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function whoLabel(m) {
    if (m.who === "person") return "Person";
    if (m.who === "staff") return (m.staff_name || "Staff") + " (staff)";
    return "Assistant";
  }
  function item(m) {
    var li = document.createElement("li");
    li.className = "msg " + m.who;
    li.setAttribute("data-seq", String(m.seq));
    var who = document.createElement("span");
    who.className = "who";
    who.textContent = whoLabel(m);
    li.appendChild(who);
    var time = document.createElement("time");
    time.setAttribute("datetime", m.at);
    time.textContent = m.at.slice(11, 16);
    li.appendChild(time);
    if (m.risk && m.risk !== "none") {
      var badge = document.createElement("span");
      badge.className = "badge level-" + m.risk;
      badge.textContent = "risk: " + m.risk;
      li.appendChild(document.createTextNode(" "));
      li.appendChild(badge);
    }
    var p = document.createElement("p");
    p.textContent = m.text;
    li.appendChild(p);
    return li;
  }

  function draw(data) {
    var fresh = [];
    data.messages.forEach(function (m) {
      if (seen[String(m.seq)]) return;
      seen[String(m.seq)] = true;
      list.appendChild(item(m));
      fresh.push(m);
    });
    after = Math.max(after, data.after || 0);
    if (fresh.length && empty) { empty.remove(); empty = null; }
    var fromPerson = fresh.filter(function (m) { return m.who === "person"; }).length;
    if (fromPerson) {
      announce.textContent = fromPerson === 1 ? "New message from the person." :
        fromPerson + " new messages from the person.";
    }
    if (statusEl && data.status && statusEl.textContent !== data.status) {
      statusEl.textContent = data.status;
    }
    if (data.status === "resolved") live = false;
    var now = new Date();
    updated.textContent = "Transcript updated " + pad(now.getHours()) + ":" + pad(now.getMinutes()) +
      ":" + pad(now.getSeconds()) + (live ? "; new messages appear here by themselves." : ".");
  }

  var timer = null;
  function schedule(ms) {
    if (!live) return;
    window.clearTimeout(timer);
    timer = window.setTimeout(poll, ms);
  }
  function poll() {
    fetch(url + "?after=" + after, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (resp) {
        if (resp.status === 401) { window.location.assign("/login"); return null; }
        if (resp.status === 403 || resp.status === 404) { live = false; return null; }
        if (!resp.ok) throw new Error("HTTP " + resp.status);
        return resp.json();
      })
      .then(function (data) { if (data) draw(data); })
      .catch(function () { updated.textContent = "Cannot refresh the transcript; retrying."; })
      .then(function () { schedule(POLL_MS); });
  }
  schedule(POLL_MS);

  var form = document.getElementById("reply-form");
  if (!form || !window.fetch || !window.URLSearchParams) return;
  var replyStatus = document.getElementById("reply-status");
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var button = form.querySelector('button[type="submit"]');
    var text = form.querySelector("textarea");
    button.disabled = true;
    replyStatus.textContent = "Sending…";
    fetch(form.getAttribute("action"), {
      method: "POST",
      credentials: "same-origin",
      headers: {
        Accept: "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
        "X-CSRF-Token": csrfMeta ? csrfMeta.getAttribute("content") : ""
      },
      body: new URLSearchParams(new FormData(form)).toString()
    })
      .then(function (resp) {
        if (resp.status === 401) { window.location.assign("/login"); return null; }
        return resp.json().then(function (body) { return { ok: resp.ok, body: body }; });
      })
      .then(function (result) {
        if (!result) return;
        var notice = (result.body && (result.body.notice || result.body.message)) || "";
        if (result.ok) {
          text.value = "";
          replyStatus.textContent = notice || "Reply sent.";
          live = true;
          schedule(0);  // show the reply as soon as it is in the transcript
        } else {
          replyStatus.textContent = notice || "The reply was not sent. Try again.";
        }
      })
      .catch(function () { replyStatus.textContent = "The reply was not sent (no connection). Try again."; })
      .then(function () { button.disabled = false; text.focus(); });
  });
}());
