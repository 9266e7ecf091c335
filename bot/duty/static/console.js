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
