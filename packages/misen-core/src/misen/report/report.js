/* misen report: draws the data embedded in the page (graph laid out by dagre, tables, timelines, details). */
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("misen-data").textContent);
  const COLOURS = { done: "#4caf50", stale: "#f2b01e", pending: "#c4c9d0", running: "#2196f3", failed: "#e53935", skipped: "#9c6ade" };
  const MARKS = { done: "✓", stale: "◐", pending: "○", running: "⟳", failed: "✗", skipped: "⤼" };
  const ORDER = ["done", "stale", "running", "pending", "failed", "skipped"];
  const GROUP_THRESHOLD = DATA.group_threshold || 12;
  const MAX_DRAWN = 600; // expanding a group past this many tasks points to the table instead
  const SVG = "http://www.w3.org/2000/svg";
  const byId = new Map(DATA.tasks.map((t) => [t.id, t]));
  const dependents = new Map();
  DATA.tasks.forEach((t) => t.deps.forEach((d) => {
    if (!dependents.has(d)) dependents.set(d, []);
    dependents.get(d).push(t.id);
  }));

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === "onclick") node.addEventListener("click", v);
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }
  function fmtDuration(s) {
    if (s === undefined || s === null) return "";
    if (s < 1) return (s * 1000).toFixed(0) + " ms";
    if (s < 120) return s.toFixed(s < 10 ? 2 : 1) + " s";
    if (s < 7200) return (s / 60).toFixed(1) + " min";
    return (s / 3600).toFixed(1) + " h";
  }
  function fmtBytes(n) {
    if (n === undefined || n === null) return "";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }
  function fmtTime(t) { return t ? new Date(t * 1000).toLocaleString() : ""; }
  function fmtValue(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number" && !Number.isInteger(v)) return Number(v.toPrecision(5)).toString();
    return String(v);
  }
  function short(text, n) { return text.length <= n ? text : text.slice(0, n - 1) + "…"; }
  function resourcesText(r) { return Object.entries(r || {}).map(([k, v]) => k + "=" + v).join(", "); }
  function stateBadge(state) {
    return el("span", { class: "state", style: "color:" + (state === "pending" ? "#57606a" : COLOURS[state]), text: MARKS[state] + " " + state });
  }

  // --- header, tabs -----------------------------------------------------------------------------------------
  document.getElementById("title").textContent = DATA.title || "misen report";
  const summary = document.getElementById("summary");
  ORDER.forEach((s) => {
    if (DATA.counts[s]) summary.append(el("span", { class: "chip " + s, style: "background:" + COLOURS[s], "data-state": s, text: DATA.counts[s] + " " + s }));
  });
  summary.append(el("span", { text: DATA.tasks.length + " tasks · workspace " + DATA.workspace + " · written " + fmtTime(DATA.generated) }));
  const legend = document.getElementById("legend");
  ORDER.forEach((s) => legend.append(el("span", { class: "legend-item" }, el("span", { class: "swatch", style: "background:" + COLOURS[s] }), MARKS[s] + " " + s)));
  const drawn = {};
  function showTab(name) {
    document.querySelectorAll("nav#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
    document.querySelectorAll(".tab").forEach((s) => s.classList.toggle("active", s.id === "tab-" + name));
    if (!drawn[name]) { drawn[name] = true; ({ graph: drawGraph, tasks: drawTable, timeline: drawTimeline, results: drawResults })[name](); }
  }
  document.querySelectorAll("nav#tabs button").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));

  // --- the graph --------------------------------------------------------------------------------------------
  const counts = new Map();
  DATA.tasks.forEach((t) => counts.set(t.fn, (counts.get(t.fn) || 0) + 1));
  const expanded = new Set();
  let zoom = 1;
  let selected = null;
  function groupOf(t) {
    // Sibling tasks of one function collapse into one node past the threshold; named tasks stay visible.
    return counts.get(t.fn) > GROUP_THRESHOLD && !expanded.has(t.fn) && !t.names.length ? "group:" + t.fn : null;
  }
  function drawGraph() {
    const g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: "LR", nodesep: 10, ranksep: 48, marginx: 12, marginy: 12 });
    g.setDefaultEdgeLabel(() => ({}));
    const groups = new Map();
    const nodeOf = new Map();
    for (const t of DATA.tasks) {
      const group = groupOf(t);
      if (group) {
        if (!groups.has(group)) groups.set(group, { fn: t.fn, states: {}, n: 0 });
        const info = groups.get(group);
        info.n++;
        info.states[t.state] = (info.states[t.state] || 0) + 1;
        nodeOf.set(t.id, group);
      } else {
        nodeOf.set(t.id, t.id);
        const text = MARKS[t.state] + " " + short(t.label, 44) + (t.names.length ? "  [" + t.names.join(", ") + "]" : "");
        g.setNode(t.id, { width: Math.min(380, 18 + 6.7 * text.length), height: 28, text: text, task: t });
      }
    }
    for (const [id, info] of groups) {
      const text = info.fn + " × " + info.n + "  (click to expand)";
      g.setNode(id, { width: Math.max(200, 18 + 6.7 * text.length), height: 46, text: text, group: info });
    }
    const seen = new Set();
    for (const t of DATA.tasks) {
      for (const d of t.deps) {
        const a = nodeOf.get(d), b = nodeOf.get(t.id);
        if (a && b && a !== b && !seen.has(a + ">" + b)) { seen.add(a + ">" + b); g.setEdge(a, b); }
      }
    }
    dagre.layout(g);
    const box = document.getElementById("graph");
    box.textContent = "";
    const width = g.graph().width || 100, height = g.graph().height || 60;
    const root = svg("svg", { width: width * zoom, height: height * zoom, viewBox: "0 0 " + width + " " + height, id: "graph-svg" });
    const defs = svg("defs");
    const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" });
    marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#8c959f" }));
    defs.append(marker);
    root.append(defs);
    g.edges().forEach((e) => {
      const pts = g.edge(e).points;
      root.append(svg("path", { class: "edge", d: "M" + pts.map((p) => p.x + "," + p.y).join(" L"), "marker-end": "url(#arrow)" }));
    });
    g.nodes().forEach((id) => {
      const n = g.node(id);
      const node = svg("g", { class: "node", transform: "translate(" + (n.x - n.width / 2) + "," + (n.y - n.height / 2) + ")" });
      const title = svg("title");
      if (n.group) {
        node.classList.add("group");
        node.setAttribute("data-group", n.group.fn);
        node.append(svg("rect", { class: "box", width: n.width, height: n.height, rx: 6 }));
        let x = 8;
        const barWidth = n.width - 16;
        ORDER.forEach((s) => {
          const c = n.group.states[s];
          if (!c) return;
          const w = (barWidth * c) / n.group.n;
          node.append(svg("rect", { x: x, y: 28, width: w, height: 10, fill: COLOURS[s], "data-state": s }));
          x += w;
        });
        title.textContent = n.group.fn + ": " + ORDER.filter((s) => n.group.states[s]).map((s) => n.group.states[s] + " " + s).join(", ");
        node.addEventListener("click", () => expandGroup(n.group.fn, n.group.n));
      } else {
        node.setAttribute("data-id", id);
        node.setAttribute("data-state", n.task.state);
        node.append(svg("rect", { class: "box", width: n.width, height: n.height, rx: 6, fill: COLOURS[n.task.state] }));
        title.textContent = n.task.label + " — " + n.task.state;
        node.addEventListener("click", () => showDetails(id));
        if (id === selected) node.classList.add("selected");
      }
      const text = svg("text", { x: 9, y: n.group ? 19 : 18 });
      text.textContent = n.text;
      node.append(title, text);
      root.append(node);
    });
    box.append(root);
    document.getElementById("graph-note").textContent = groups.size ? groups.size + " group(s) of more than " + GROUP_THRESHOLD + " sibling tasks collapsed" : "";
  }
  function expandGroup(fn, n) {
    if (n > MAX_DRAWN) {
      document.getElementById("task-filter").value = fn;
      showTab("tasks");
      renderRows();
      return;
    }
    expanded.add(fn);
    drawGraph();
  }
  document.getElementById("collapse-all").addEventListener("click", () => { expanded.clear(); drawGraph(); });
  document.getElementById("zoom-in").addEventListener("click", () => { zoom *= 1.25; drawGraph(); });
  document.getElementById("zoom-out").addEventListener("click", () => { zoom /= 1.25; drawGraph(); });

  // --- details of one task ------------------------------------------------------------------------------------
  function taskLink(id) {
    const t = byId.get(id);
    return el("a", { class: "link", onclick: () => showDetails(id), text: t ? MARKS[t.state] + " " + t.label : id });
  }
  function diffBlock(lines) {
    const pre = el("pre", { class: "diff" });
    lines.forEach((line) => {
      const cls = line.startsWith("@@") ? "hunk" : line.startsWith("+") && !line.startsWith("+++") ? "add" : line.startsWith("-") && !line.startsWith("---") ? "del" : "";
      pre.append(cls ? el("span", { class: cls, text: line }) : line + "\n");
    });
    return pre;
  }
  function previewBlock(p) {
    if (p.kind === "image") return el("img", { class: "preview", alt: "result preview", src: "data:" + p.mime + ";base64," + p.data });
    if (p.kind === "html") {
      const div = el("div", { class: "preview-html" });
      div.innerHTML = p.data; // built by serializers from escaped text
      return div;
    }
    return el("pre", { class: "preview-text", text: p.data });
  }
  function showDetails(id) {
    const t = byId.get(id);
    if (!t) return;
    selected = id;
    document.querySelectorAll(".node.selected").forEach((n) => n.classList.remove("selected"));
    document.querySelectorAll('.node[data-id="' + id + '"]').forEach((n) => n.classList.add("selected"));
    const body = document.getElementById("details-body");
    body.textContent = "";
    body.setAttribute("data-id", id);
    body.append(el("h2", { text: t.label }), stateBadge(t.state));
    if (t.names.length) body.append(el("span", { class: "muted", text: "  named: " + t.names.join(", ") }));
    const fields = el("table", { class: "fields" });
    const rows = [
      ["task", t.repr], ["hash", t.id], ["duration", fmtDuration(t.duration)], ["host", t.host], ["worker / job", t.job ? "job " + t.job : t.worker],
      ["executor", t.executor], ["resources asked", resourcesText(t.resources)], ["resources bound", t.bound], ["result size", fmtBytes(t.size)],
      ["computed", fmtTime(t.computed)], ["run", t.run], ["accepted", t.accepted ? "yes: an earlier version's result, accepted" : ""],
    ];
    rows.forEach(([k, v]) => { if (v) fields.append(el("tr", {}, el("th", { text: k }), el("td", { text: String(v) }))); });
    if (!t.cacheable) fields.append(el("tr", {}, el("th", { text: "cache" }), el("td", { text: "not cached: computed where it is needed" })));
    body.append(fields);
    if (t.error) {
      body.append(el("h3", { text: t.state === "skipped" ? "Skipped: a dependency failed" : "Error" }));
      if (t.error_of) body.append(el("p", {}, "failed dependency: ", taskLink(t.error_of)));
      body.append(el("pre", { class: "error", text: t.error }));
    }
    if (t.diff) {
      body.append(el("h3", { text: "Why it is stale" }));
      const section = el("div", { class: "stale-diff" });
      if (t.diff.items.length) {
        t.diff.items.forEach((item) => {
          section.append(el("p", { text: item.change + ": " + item.kind + " " + item.name + " (" + item.where + ")" }));
          section.append(item.lines.length ? diffBlock(item.lines) : el("p", { class: "muted", text: "the workspace kept no text of the old code" }));
        });
      } else {
        section.append(el("p", { text: "its code is unchanged; a dependency changed:" }));
        (t.diff.deps || []).forEach((d) => section.append(el("div", {}, taskLink(d))));
      }
      body.append(section);
    }
    if (t.preview) body.append(el("h3", { text: "Result" }), previewBlock(t.preview));
    if (t.log) {
      body.append(el("h3", { id: "details-log", text: "Log" }), el("p", { class: "muted", text: t.log.path + (t.log.truncated ? " (only its end is shown)" : "") }));
      body.append(t.log.text === null ? el("p", { class: "muted", text: "(not embedded: this report keeps the logs of its first tasks and of failed ones)" }) : el("pre", { class: "log", text: t.log.text }));
    }
    if (t.deps.length) { body.append(el("h3", { text: "Depends on" })); t.deps.forEach((d) => body.append(el("div", {}, taskLink(d)))); }
    const after = dependents.get(id) || [];
    if (after.length) { body.append(el("h3", { text: "Needed by" })); after.slice(0, 200).forEach((d) => body.append(el("div", {}, taskLink(d)))); }
    document.getElementById("details").hidden = false;
  }
  document.getElementById("details-close").addEventListener("click", () => { document.getElementById("details").hidden = true; });

  // --- sortable tables ------------------------------------------------------------------------------------------
  function compare(a, b) {
    const na = typeof a === "number", nb = typeof b === "number";
    if (a === null || a === undefined || a === "") return b === null || b === undefined || b === "" ? 0 : 1;
    if (b === null || b === undefined || b === "") return -1;
    if (na && nb) return a - b;
    return String(a).localeCompare(String(b), undefined, { numeric: true });
  }
  function sortableHeader(table, columns, state, redraw) {
    const tr = el("tr");
    columns.forEach((c, i) => {
      const th = el("th", { text: c.title, "data-col": i });
      if (state.col === i) th.classList.add(state.dir > 0 ? "sorted-asc" : "sorted-desc");
      th.addEventListener("click", () => { state.dir = state.col === i ? -state.dir : 1; state.col = i; redraw(); });
      tr.append(th);
    });
    table.append(el("thead", {}, tr));
  }

  // --- the task table -----------------------------------------------------------------------------------------
  const PAGE = 200;
  const tableState = { col: null, dir: 1, page: 0 };
  const COLUMNS = [
    { title: "task", get: (t) => t.label },
    { title: "state", get: (t) => ORDER.indexOf(t.state), show: (t) => stateBadge(t.state) },
    { title: "duration", get: (t) => t.duration, show: (t) => fmtDuration(t.duration), num: true },
    { title: "host", get: (t) => t.host || "" },
    { title: "worker / job", get: (t) => (t.job ? "job " + t.job : t.worker || "") },
    { title: "resources asked", get: (t) => resourcesText(t.resources) },
    { title: "bound", get: (t) => t.bound || "" },
    { title: "size", get: (t) => t.size, show: (t) => fmtBytes(t.size), num: true },
    { title: "computed", get: (t) => t.computed, show: (t) => fmtTime(t.computed) },
    { title: "result", get: (t) => (t.preview ? (t.preview.kind === "text" ? short(t.preview.data.replace(/\s+/g, " "), 60) : "(" + t.preview.kind + ")") : "") },
    { title: "log", get: (t) => (t.log ? 1 : 0), show: (t) => (t.log ? el("a", { class: "link log-link", onclick: (ev) => { ev.stopPropagation(); showDetails(t.id); document.getElementById("details-log").scrollIntoView(); }, text: "log" }) : "") },
  ];
  function drawTable() {
    document.getElementById("task-filter").addEventListener("input", () => { tableState.page = 0; renderRows(); });
    renderRows();
  }
  function renderRows() {
    const needle = document.getElementById("task-filter").value.trim().toLowerCase();
    let rows = DATA.tasks;
    if (needle) rows = rows.filter((t) => (t.label + " " + t.state + " " + (t.host || "") + " " + (t.worker || "") + " " + t.names.join(" ")).toLowerCase().includes(needle));
    if (tableState.col !== null) {
      const get = COLUMNS[tableState.col].get;
      rows = rows.slice().sort((a, b) => tableState.dir * compare(get(a), get(b)));
    }
    const table = document.getElementById("task-table");
    table.textContent = "";
    sortableHeader(table, COLUMNS, tableState, renderRows);
    const pages = Math.max(1, Math.ceil(rows.length / PAGE));
    tableState.page = Math.min(tableState.page, pages - 1);
    const tbody = el("tbody");
    rows.slice(tableState.page * PAGE, (tableState.page + 1) * PAGE).forEach((t) => {
      const tr = el("tr", { class: "row", "data-id": t.id, "data-state": t.state });
      COLUMNS.forEach((c) => {
        const v = c.show ? c.show(t) : c.get(t);
        tr.append(el("td", { class: c.num ? "num" : "" }, v === undefined || v === null ? "" : v));
      });
      tr.addEventListener("click", () => showDetails(t.id));
      tbody.append(tr);
    });
    table.append(tbody);
    const pager = document.getElementById("task-pages");
    pager.textContent = rows.length + " task(s)";
    if (pages > 1) {
      pager.append(" · page ");
      const prev = el("button", { type: "button", text: "‹" }), next = el("button", { type: "button", text: "›" });
      prev.addEventListener("click", () => { if (tableState.page > 0) { tableState.page--; renderRows(); } });
      next.addEventListener("click", () => { if (tableState.page < pages - 1) { tableState.page++; renderRows(); } });
      pager.append(prev, " " + (tableState.page + 1) + " of " + pages + " ", next);
    }
  }

  // --- timelines ------------------------------------------------------------------------------------------------
  function drawTimeline() {
    const select = document.getElementById("run-select");
    const runs = DATA.runs;
    if (!runs.length) { document.getElementById("timeline").textContent = "No run has stored a result in this workspace yet."; return; }
    runs.forEach((r, i) => select.append(el("option", { value: i, text: (i === runs.length - 1 ? "last run: " : "") + fmtTime(r.start) + " (" + r.bars.length + " tasks, " + r.id + ")" })));
    select.value = runs.length - 1;
    select.addEventListener("change", () => drawRun(runs[Number(select.value)]));
    drawRun(runs[runs.length - 1]);
  }
  function drawRun(run) {
    const box = document.getElementById("timeline");
    box.textContent = "";
    const lanes = [...new Set(run.bars.map((b) => b.lane))].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    const laneIndex = new Map(lanes.map((l, i) => [l, i]));
    const left = 230, width = Math.max(600, box.clientWidth || 1100) - 10, row = lanes.length > 60 ? 10 : 22;
    const span = Math.max(run.end - run.start, 1e-3);
    const x = (t) => left + ((t - run.start) / span) * (width - left - 10);
    const height = 30 + lanes.length * row;
    const root = svg("svg", { width: width, height: height, id: "timeline-svg" });
    for (let i = 0; i <= 5; i++) {
      const t = run.start + (span * i) / 5;
      root.append(svg("line", { x1: x(t), x2: x(t), y1: 14, y2: height, stroke: "#e1e4e8" }));
      const label = svg("text", { x: i === 5 ? x(t) - 2 : x(t) + 2, y: 11, "text-anchor": i === 5 ? "end" : "start" });
      label.textContent = "+" + fmtDuration(t - run.start);
      root.append(label);
    }
    if (row >= 14) lanes.forEach((l, i) => {
      const label = svg("text", { x: 4, y: 30 + i * row + row / 2 });
      label.textContent = short(l, 36);
      root.append(label);
    });
    run.bars.forEach((b) => {
      const t = byId.get(b.task);
      const rect = svg("rect", {
        class: "bar", "data-task": b.task, "data-state": b.state, x: x(b.start), y: 20 + laneIndex.get(b.lane) * row + 2,
        width: Math.max(2, x(b.end) - x(b.start)), height: row - 4, fill: COLOURS[b.state] || COLOURS.done, rx: 2,
      });
      const title = svg("title");
      title.textContent = (t ? t.label : b.task) + " — " + fmtDuration(b.end - b.start) + " on " + b.lane;
      rect.append(title);
      rect.addEventListener("click", () => showDetails(b.task));
      root.append(rect);
    });
    box.append(root);
    document.getElementById("run-note").textContent = lanes.length + " lane(s), " + run.bars.length + " task(s), " + fmtDuration(span);
  }

  // --- sweep results ------------------------------------------------------------------------------------------
  function drawResults() {
    const box = document.getElementById("results");
    if (!DATA.tables.length) { box.textContent = "No function with several stored results of plain values (numbers, strings, or dicts of them)."; return; }
    DATA.tables.forEach((tab) => {
      const state = { col: null, dir: 1 };
      const wrap = el("div", { class: "results-table" }, el("h3", { text: tab.fn + " (" + tab.rows.length + " results)" }));
      const table = el("table", { class: "sortable", "data-fn": tab.fn });
      const columns = tab.columns.map((c, i) => ({ title: c, get: (r) => r.values[i] }));
      const redraw = () => {
        table.textContent = "";
        sortableHeader(table, columns, state, redraw);
        let rows = tab.rows;
        if (state.col !== null) rows = rows.slice().sort((a, b) => state.dir * compare(a.values[state.col], b.values[state.col]));
        const tbody = el("tbody");
        rows.slice(0, 2000).forEach((r) => {
          const tr = el("tr", { class: "row", "data-id": r.task });
          r.values.forEach((v, i) => tr.append(el("td", { class: typeof v === "number" ? "num" : "", text: fmtValue(v), style: i < tab.params ? "font-weight:600" : null })));
          tr.addEventListener("click", () => showDetails(r.task));
          tbody.append(tr);
        });
        table.append(tbody);
      };
      redraw();
      wrap.append(table);
      box.append(wrap);
    });
  }

  showTab("graph");
  window.misenReport = { showDetails: showDetails, showTab: showTab, data: DATA, ready: true };
  document.body.setAttribute("data-ready", "1");
})();
