// The spanline console page: follows one feed over server-sent events and
// renders each JSON line as the console renderer does. Every value from a
// line goes into the page as text (textContent), never as markup.
"use strict";
(() => {
  const body = document.body;
  const root = body.dataset.root || "";
  const job = body.dataset.job || "";
  // Rows in the page, and lines kept for re-filtering: a flood leaves the
  // tab responsive because older lines are let go.
  const MAX_ROWS = 5000;
  // Rows drawn per flush (every 100 ms) at most: under a flood the page
  // draws the newest and says how many it skipped, so it stays responsive.
  const MAX_DRAWN = 1000;
  // The server's level names (spanline_json::read::Level), in order.
  const LEVELS = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4, CRITICAL: 5 };

  const $ = (id) => document.getElementById(id);
  const linesEl = $("lines");
  const stateEl = $("state");
  const countsEl = $("counts");
  const levelEl = $("level");
  const searchEl = $("search");
  const searchErrEl = $("search-error");
  const followEl = $("follow");
  const pauseEl = $("pause");

  let kept = []; // records, newest last
  let pending = []; // records not yet rendered
  let received = 0;
  let letGo = 0; // lines no longer kept
  let paused = false;
  let flushing = false;
  let ended = false;

  const show = (v) => (typeof v === "string" ? v : JSON.stringify(v));
  // Characters that would reorder or break what is shown (bidi overrides
  // and isolates, line and paragraph separators, C0 and C1 controls but
  // tab and newline) shown escaped, as `spanline pretty` does: a U+202E in
  // a message cannot reverse the rest of its row.
  const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
  const safe = (text) => String(text).replace(UNSAFE, (c) => "\\u{" + c.codePointAt(0).toString(16) + "}");

  // One line, as the server read it (spanline-json's reader: every preset's
  // keys and level words are mapped there, none here).
  function parse(data) {
    let rec;
    try {
      rec = JSON.parse(data);
    } catch (_) {
      rec = { raw: data, message: data };
    }
    const fields = rec.fields || [];
    const errors = (rec.errors || []).flatMap(([, chain]) => chain.map(show));
    const message = rec.message === undefined ? "" : show(rec.message);
    const target = rec.target || "";
    const level = rec.level || "INFO";
    const time = rec.ms === undefined || rec.ms === null ? rec.time || null : rec.ms;
    return { raw: rec.raw === undefined ? data : rec.raw, time, level, message, target, fields, errors, end: rec.end === true };
  }

  // The time in the viewer's zone; epoch seconds or milliseconds too.
  function localTime(value) {
    if (value === undefined || value === null) return ["", ""];
    let date;
    if (typeof value === "number") date = new Date(value > 1e12 ? value : value * 1000);
    else date = new Date(value);
    if (isNaN(date.getTime())) return [show(value), ""];
    const pad = (n, w) => String(n).padStart(w, "0");
    const text = pad(date.getHours(), 2) + ":" + pad(date.getMinutes(), 2) + ":" + pad(date.getSeconds(), 2) + "." + pad(date.getMilliseconds(), 3);
    return [text, date.toString()];
  }

  function span(cls, text) {
    const el = document.createElement("span");
    el.className = cls;
    el.textContent = safe(text);
    return el;
  }

  // The search's words and `~=` texts, marked where they occur (as text
  // nodes and <mark> elements: never markup from a line).
  let highlights = [];
  function marked(cls, text) {
    const el = span(cls, "");
    text = safe(text);
    const lower = text.toLowerCase();
    let at = 0;
    while (highlights.length > 0) {
      let next = -1;
      let len = 0;
      for (const h of highlights) {
        const i = lower.indexOf(h, at);
        if (i !== -1 && (next === -1 || i < next)) [next, len] = [i, h.length];
      }
      if (next === -1) break;
      el.append(text.slice(at, next));
      const m = document.createElement("mark");
      m.textContent = text.slice(next, next + len);
      el.append(m);
      at = next + len;
    }
    el.append(text.slice(at));
    return el;
  }

  function row(rec) {
    const el = document.createElement("div");
    el.className = "row lvl-" + (LEVELS[rec.level] === undefined ? "INFO" : rec.level) + (rec.end ? " end" : "");
    const [time, full] = localTime(rec.time);
    const t = span("time", time);
    t.title = full;
    el.append(t, " ", span("level", rec.level), " ");
    if (rec.target) el.append(span("target", rec.target + ":"), " ");
    el.append(marked("msg", rec.message));
    for (const [k, v] of rec.fields) {
      if (hiddenFields.has(k)) continue;
      const kv = span("kv", "");
      const key = span("k", k);
      key.dataset.key = k;
      key.title = "hide " + safe(k);
      kv.append(" ", key, "=", marked("v", show(v)));
      el.append(kv);
    }
    rec.errors.forEach((e, i) => el.append(span("err", (i === 0 ? "error: " : "caused by: ") + e)));
    records.set(el, rec);
    return el;
  }

  // One listener for every row: a click on a field's name hides that
  // field; a click elsewhere shows the row's raw JSON.
  const records = new WeakMap();
  linesEl.addEventListener("click", (e) => {
    if (e.target.classList.contains("k")) {
      hiddenFields.add(e.target.dataset.key);
      showHidden();
      rerender();
      return;
    }
    const el = e.target.closest(".row");
    const rec = el && records.get(el);
    if (!rec) return;
    const open = el.querySelector(".raw");
    if (open) return open.remove();
    const pre = document.createElement("pre");
    pre.className = "raw";
    try {
      pre.textContent = safe(JSON.stringify(JSON.parse(rec.raw), null, 2));
    } catch (_) {
      pre.textContent = safe(rec.raw);
    }
    el.append(pre);
  });

  function note(cls, text) {
    const el = document.createElement("div");
    el.className = cls;
    el.textContent = safe(text);
    return el;
  }

  const minLevel = () => Number(levelEl.value);
  // The filter's inputs are read once per batch, not once per line.
  function matches(rec, min) {
    if (rec.note) return true;
    const level = LEVELS[rec.level] === undefined ? 2 : LEVELS[rec.level];
    return level >= min;
  }
  const render = (rec) => (rec.note ? note(rec.note, rec.text) : row(rec));

  // Older rows go in one operation, not one by one.
  function trimRows() {
    const excess = linesEl.childElementCount - MAX_ROWS;
    if (excess <= 0) return;
    const range = document.createRange();
    range.setStartBefore(linesEl.firstElementChild);
    range.setEndBefore(linesEl.children[excess]);
    range.deleteContents();
  }

  function follow() {
    if (followEl.checked) linesEl.scrollTop = linesEl.scrollHeight;
  }

  // Rows of lines, not the notes between them.
  const rowsShown = linesEl.getElementsByClassName("row");
  function counts() {
    let text = received.toLocaleString() + " lines, " + rowsShown.length.toLocaleString() + " shown";
    if (letGo > 0) text += ", " + letGo.toLocaleString() + " older not kept";
    if (paused && pending.length > 0) text += ", " + pending.length.toLocaleString() + " new while paused";
    countsEl.textContent = text;
  }

  function flush() {
    flushing = false;
    if (!paused && pending.length > 0) {
      const level = minLevel();
      const matching = pending.filter((rec) => matches(rec, level));
      const batch = matching.slice(-MAX_DRAWN);
      pending = [];
      const frag = document.createDocumentFragment();
      const skipped = matching.length - batch.length;
      if (skipped > 0) {
        frag.append(note("note", skipped.toLocaleString() + " lines not drawn to keep up with the flood (pause to see the last " + MAX_ROWS.toLocaleString() + ")"));
      }
      for (const rec of batch) frag.append(render(rec));
      linesEl.append(frag);
      trimRows();
      follow();
    }
    counts();
  }

  function add(rec) {
    kept.push(rec);
    pending.push(rec);
    if (kept.length > MAX_ROWS * 1.2) {
      const n = kept.length - MAX_ROWS;
      kept = kept.slice(n);
      letGo += n;
    }
    if (pending.length > MAX_ROWS * 1.2) pending = pending.slice(-MAX_ROWS);
    if (!flushing) {
      flushing = true;
      setTimeout(flush, 100);
    }
  }

  // A filter changed: render the kept lines again.
  function rerender() {
    pending = [];
    linesEl.replaceChildren();
    const frag = document.createDocumentFragment();
    const level = minLevel();
    for (const rec of kept.filter((rec) => matches(rec, level)).slice(-MAX_ROWS)) frag.append(render(rec));
    linesEl.append(frag);
    follow();
    counts();
  }

  function setState(cls, text) {
    // A job that ended stays ended while the connection is fine.
    if (ended && cls === "live") [cls, text] = ["ended", "job ended"];
    stateEl.className = "state " + cls;
    stateEl.textContent = text;
  }

  levelEl.addEventListener("change", rerender);
  pauseEl.addEventListener("click", () => {
    paused = !paused;
    pauseEl.textContent = paused ? "resume" : "pause";
    if (paused) counts();
    else rerender();
  });
  linesEl.addEventListener("scroll", () => {
    const atBottom = linesEl.scrollTop + linesEl.clientHeight >= linesEl.scrollHeight - 24;
    followEl.checked = atBottom;
  });
  followEl.addEventListener("change", follow);

  // The feed: the server matches the search (spanline's query language,
  // docs/query.md) and sends only the lines it matches.
  const events = root + (job ? "/jobs/" + encodeURIComponent(job) : "") + "/events";
  let source = null;
  let since = null; // the "from" time, in ms
  function connect(q) {
    if (source) source.close();
    const params = new URLSearchParams();
    if (q) params.set("q", q);
    if (since !== null) params.set("since", String(since));
    const query = params.toString();
    source = new EventSource(events + (query ? "?" + query : ""));
    source.addEventListener("line", (e) => {
      received += 1;
      const rec = parse(e.data);
      rec.id = e.lastEventId;
      add(rec);
      if (rec.end && job) {
        ended = true;
        setState("ended", "job ended");
      }
    });
    source.addEventListener("gap", (e) => add({ note: "gap", text: "lines may be missing here: " + e.data }));
    source.addEventListener("state", (e) => {
      let s;
      try {
        s = JSON.parse(e.data);
      } catch (_) {
        return;
      }
      if (s.state === "live") setState("live", "live (" + (s.source === "streams" ? "streams" : "pub/sub") + ")");
      else setState("unavailable", "Redis unavailable: " + (s.reason || "unknown") + " (retrying)");
    });
    source.addEventListener("error", () => setState("reconnecting", "reconnecting to the console"));
  }
  connect("");

  // A new search: checked by the server (an error says where it is wrong),
  // then the feed again, from the start of what Redis keeps, matched.
  let searched = "";
  let searchTimer = null;
  async function search() {
    const q = searchEl.value.trim();
    if (q === searched) return;
    try {
      const res = await fetch(root + "/api/query?q=" + encodeURIComponent(q), { credentials: "same-origin" });
      const data = await res.json();
      if (!res.ok) {
        searchErrEl.textContent = data.error || "invalid query";
        searchEl.classList.add("bad");
        return;
      }
      highlights = (data.highlights || []).map((h) => h.toLowerCase()).filter(Boolean);
    } catch (_) {
      return;
    }
    searchErrEl.textContent = "";
    searchEl.classList.remove("bad");
    searched = q;
    restart();
  }

  // The feed again, from the start (the backlog, or the "from" time).
  function restart() {
    kept = [];
    pending = [];
    received = 0;
    letGo = 0;
    linesEl.replaceChildren();
    earlierEl.disabled = false;
    earlierEl.textContent = "load earlier";
    counts();
    connect(searched);
  }
  searchEl.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(search, 300);
  });
  searchEl.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      clearTimeout(searchTimer);
      search();
    }
  });

  // Fields hidden by a click on their name; a click on the chip shows
  // the field again.
  const hiddenFields = new Set();
  const hiddenEl = $("hidden-fields");
  function showHidden() {
    const chips = [...hiddenFields].map((k) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "chip";
      b.textContent = safe(k) + " \u00d7";
      b.title = "show " + safe(k) + " again";
      b.addEventListener("click", () => {
        hiddenFields.delete(k);
        showHidden();
        rerender();
      });
      return b;
    });
    hiddenEl.replaceChildren(...(chips.length ? [span("dim", "hidden: "), ...chips] : []));
  }

  // Copies a text, saying so on the button.
  async function copy(button, text) {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "copied";
    } catch (_) {
      // No clipboard (an insecure origin): select it for Ctrl+C instead.
      const input = document.createElement("input");
      input.value = text;
      button.after(input);
      input.select();
      button.textContent = "press Ctrl+C";
    }
    setTimeout(() => (button.textContent = "copy id"), 1500);
  }

  // A job's page: its full id, copied with a click; this job beside the
  // global feed.
  const splitEl = $("split");
  if (job) {
    const copyEl = $("copy-job");
    copyEl.hidden = false;
    copyEl.addEventListener("click", () => copy(copyEl, job));
    splitEl.href = root + "/split?a=" + encodeURIComponent(job) + "&b=";
  } else {
    splitEl.hidden = true;
  }
  if (window.top !== window) splitEl.hidden = true;
  if (body.dataset.user) $("user").textContent = "signed in as " + safe(body.dataset.user);

  // What is shown, as JSON lines: the search and the level applied.
  $("download").addEventListener("click", () => {
    const level = minLevel();
    const lines = kept.filter((rec) => !rec.note && matches(rec, level)).map((rec) => rec.raw);
    const blob = new Blob([lines.join("\n") + (lines.length ? "\n" : "")], { type: "application/x-ndjson" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = (job || "global") + ".jsonl";
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  });

  // History from the stream: the lines before the oldest shown.
  const earlierEl = $("earlier");
  const history = root + (job ? "/jobs/" + encodeURIComponent(job) + "/history" : "/api/history");
  earlierEl.addEventListener("click", async () => {
    const oldest = kept.find((rec) => /^\d+-\d+$/.test(rec.id || ""));
    if (!oldest) {
      earlierEl.textContent = "no history (not on a stream)";
      earlierEl.disabled = true;
      return;
    }
    const params = new URLSearchParams({ before: oldest.id, n: "500" });
    if (searched) params.set("q", searched);
    try {
      const res = await fetch(history + "?" + params, { credentials: "same-origin" });
      if (!res.ok) return;
      const data = await res.json();
      const older = data.lines.map((l) => Object.assign(parse(JSON.stringify(l.line)), { id: l.id }));
      kept = older.concat(kept);
      received += older.length;
      if (!data.more) {
        earlierEl.textContent = "no earlier lines";
        earlierEl.disabled = true;
      }
      rerender();
      if (older.length > 0) linesEl.scrollTop = 0;
    } catch (_) {
      // The console is unreachable: the state badge says so.
    }
  });

  // The lines from a time on (the viewer's zone), then live.
  const fromEl = $("from");
  fromEl.addEventListener("change", () => {
    const at = fromEl.value ? new Date(fromEl.value).getTime() : NaN;
    since = isNaN(at) ? null : at;
    restart();
  });

  // The global page lists recent jobs.
  if (!job) {
    $("jobs-panel").hidden = false;
    const jobsEl = $("jobs");
    const refresh = async () => {
      try {
        const res = await fetch(root + "/api/jobs", { credentials: "same-origin" });
        if (!res.ok) return;
        const data = await res.json();
        const items = data.jobs.map((j) => {
          const li = document.createElement("li");
          const a = document.createElement("a");
          a.href = root + "/jobs/" + encodeURIComponent(j.job_id);
          a.className = "job-id";
          a.textContent = safe(j.job_id);
          const copyEl = document.createElement("button");
          copyEl.type = "button";
          copyEl.className = "copy";
          copyEl.textContent = "copy id";
          copyEl.addEventListener("click", () => copy(copyEl, j.job_id));
          const beside = document.createElement("a");
          beside.href = root + "/split?a=" + encodeURIComponent(j.job_id) + "&b=";
          beside.textContent = "split";
          beside.title = "this job beside the global feed";
          const [time] = localTime(j.time);
          const meta = span("meta", " " + [time, j.level || "", j.lines + " lines"].filter(Boolean).join("  "));
          li.className = "lvl-" + (j.level || "INFO");
          li.append(a, " ", copyEl, " ", beside, document.createElement("br"), meta);
          return li;
        });
        jobsEl.replaceChildren(...items);
      } catch (_) {
        // The console is unreachable: the state badge says so.
      }
    };
    refresh();
    setInterval(refresh, 2000);
  }
})();
