/// The fleet dashboard: one self-contained page (no CDN, no map tiles: it must work in a control
/// room without internet). It polls `GET /fleet` every 2 s and draws the sites on an inline SVG
/// (equirectangular projection of the fleet's own bounding box) and the fleet table. Each table
/// row carries `data-agent` so a headless browser check (ops/check-dashboard) can count them.
/// Clicking an agent shows its twin entities: each measured attribute's latest value and a
/// sparkline of its newest 96 readings from the temporal API (`data-sparkline` on each).
/// Open alerts (`GET /alerts`) are listed (`data-alert` rows, worst first) and ringed on the map
/// in their severity's colour (`data-alert-marker`); clicking one opens its agent's twin.
enum DashboardPage {
    static let html = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Gemello fleet and alerts</title>
    <style>
      :root { --online: #1a9850; --stale: #e6a100; --offline: #d73027; --ink: #1d2430; --muted: #6b7280; }
      * { box-sizing: border-box; }
      body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--ink); background: #f4f5f7; }
      header { display: flex; flex-wrap: wrap; gap: .3rem 1.5rem; align-items: baseline; padding: .8rem 1.2rem; background: #1d2430; color: #fff; }
      header h1 { font-size: 1.2rem; margin: 0; }
      header .counts span { margin-right: 1rem; font-weight: 600; }
      header .updated { margin-left: auto; font-size: .85rem; color: #c9ced6; }
      /* Two columns from 1000 px (map, agents), one below; no track wider than the window: a
         table wider than its card scrolls inside it (.tablewrap). */
      main { display: grid; grid-template-columns: minmax(280px, 460px) minmax(0, 1fr); gap: 1rem; padding: 1rem; }
      @media (max-width: 1000px) { main { grid-template-columns: minmax(0, 1fr); padding: .5rem; gap: .5rem; } }
      section { background: #fff; border-radius: 6px; box-shadow: 0 1px 2px rgba(0,0,0,.08); padding: .8rem; min-width: 0; }
      h2 { font-size: 1rem; margin: 0 0 .5rem; }
      svg { width: 100%; height: auto; background: #eef2f6; border-radius: 4px; }
      .dot-online { fill: var(--online); } .dot-stale { fill: var(--stale); } .dot-offline { fill: var(--offline); }
      .legend span { margin-right: .8rem; font-size: .85rem; }
      .legend i { display: inline-block; width: .7rem; height: .7rem; border-radius: 50%; margin-right: .25rem; vertical-align: -1px; }
      table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
      th, td { text-align: left; padding: .25rem .45rem; border-bottom: 1px solid #e5e7eb; white-space: nowrap; }
      th { position: sticky; top: 0; background: #fff; font-size: .8rem; color: var(--muted); text-transform: uppercase; }
      td.num { text-align: right; }
      .status { font-weight: 600; } .status-online { color: var(--online); } .status-stale { color: var(--stale); }
      .status-offline { color: var(--offline); }
      .tablewrap { max-height: 75vh; max-width: 100%; overflow: auto; }
      #error { display: none; padding: .6rem 1.2rem; background: var(--offline); color: #fff; }
      tbody tr { cursor: pointer; } tbody tr.selected { background: #e8f0fe; }
      #twin { grid-column: 1 / -1; } #twin table td svg { width: 180px; height: 28px; background: none; vertical-align: middle; }
      .spark { fill: none; stroke: #2563eb; stroke-width: 1.5; }
      input[type=search] { width: 100%; padding: .35rem .5rem; margin-bottom: .5rem; border: 1px solid #d1d5db; border-radius: 4px; }
      #alerts { grid-column: 1 / -1; } #alerts td.headline { white-space: normal; }
      .sev-extreme { color: #7f0000; } .sev-severe { color: var(--offline); } .sev-moderate { color: #e66101; } .sev-minor { color: #b08800; }
      .ring-extreme { stroke: #7f0000; } .ring-severe { stroke: var(--offline); } .ring-moderate { stroke: #e66101; } .ring-minor { stroke: #b08800; }
      .ring { fill: none; stroke-width: 2.5; }
    </style>
    </head>
    <body>
    <header>
      <h1>Gemello fleet</h1>
      <div class="counts" id="counts">loading…</div>
      <div class="updated" id="updated"></div>
    </header>
    <div id="error"></div>
    <main>
      <section id="alerts">
        <h2 id="alerttitle">Open alerts</h2>
        <div class="tablewrap" style="max-height: 30vh"><table>
          <thead><tr><th>Severity</th><th>Rule</th><th>Site</th><th>Raised</th><th>Value</th><th>Count</th><th>Headline</th></tr></thead>
          <tbody id="alertrows"></tbody>
        </table></div>
      </section>
      <section>
        <h2>Sites</h2>
        <svg id="map" viewBox="0 0 500 400" role="img" aria-label="Map of agent sites"></svg>
        <div class="legend"><span><i style="background:var(--online)"></i>online</span>
          <span><i style="background:var(--stale)"></i>stale</span><span><i style="background:var(--offline)"></i>offline</span>
          <span id="sitecount"></span></div>
      </section>
      <section>
        <h2>Agents</h2>
        <input type="search" id="filter" placeholder="filter by agent, site or status">
        <div class="tablewrap">
          <table>
            <thead><tr><th>Agent</th><th>Status</th><th>Site</th><th>Kind</th><th>Last seen</th><th>Backlog</th>
              <th>Oldest unsent</th><th>Dropped</th><th>RSS</th><th>CPU</th><th>Version</th></tr></thead>
            <tbody id="agents"></tbody>
          </table>
        </div>
      </section>
      <section id="twin">
        <h2 id="twintitle">Twin: click an agent to see its entities and their history</h2>
        <div class="tablewrap"><table>
          <thead><tr><th>Entity</th><th>Attribute</th><th>Latest</th><th>Observed</th><th>History (newest 96 readings)</th><th>Range</th></tr></thead>
          <tbody id="entities"></tbody>
        </table></div>
      </section>
    </main>
    <script>
    "use strict";
    const rank = { offline: 0, stale: 1, online: 2 };
    const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
    const ago = s => s == null ? "never" : s < 90 ? Math.round(s) + " s ago" : s < 5400 ? Math.round(s / 60) + " min ago" : Math.round(s / 3600) + " h ago";
    const mb = b => b == null ? "-" : (b / 1048576).toFixed(1) + " MB";
    const secs = s => s == null ? "-" : s < 90 ? Math.round(s) + " s" : s < 5400 ? Math.round(s / 60) + " min" : (s / 3600).toFixed(1) + " h";
    let fleet = [];
    let alerts = [];
    let selected = null;
    const severityRank = { extreme: 0, severe: 1, moderate: 2, minor: 3 };
    // The API token (scopes fleet:read and twin:read): from dashboard#token=<token>, kept for this
    // tab only (sessionStorage) and taken out of the address bar at once.
    const params = new URLSearchParams(location.hash.slice(1));
    if (params.get("token")) {
      sessionStorage.setItem("gemello-token", params.get("token"));
      params.delete("token");
      history.replaceState(null, "", location.pathname + location.search + (params.toString() ? "#" + params.toString() : ""));
    }
    const api = (path, options = {}) => {
      const token = sessionStorage.getItem("gemello-token");
      const headers = Object.assign({}, options.headers || {}, token ? { Authorization: "Bearer " + token } : {});
      return fetch(path, Object.assign({}, options, { headers, cache: "no-store" }));
    };
    function askToken() {
      const banner = document.getElementById("error");
      banner.innerHTML = 'This aggregator wants an API token (scopes fleet:read and twin:read; an operator makes one with '
        + '<code>gemello token create</code>): <input id="token" type="password" size="40" aria-label="API token"> <button id="usetoken">Use</button>';
      banner.style.display = "block";
      document.getElementById("usetoken").onclick = () => {
        sessionStorage.setItem("gemello-token", document.getElementById("token").value.trim());
        refresh();
      };
    }
    const sdm = '<https://raw.githubusercontent.com/smart-data-models/data-models/master/context.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"';

    function sparkline(values) {
      if (values.length < 2) return "";
      const lo = Math.min(...values), hi = Math.max(...values), w = 180, h = 28;
      const pts = values.map((v, i) => `${(i * (w - 2) / (values.length - 1) + 1).toFixed(1)},${(h - 2 - (hi > lo ? (v - lo) / (hi - lo) : 0.5) * (h - 4)).toFixed(1)}`);
      return `<svg viewBox="0 0 ${w} ${h}"><polyline class="spark" points="${pts.join(" ")}"/></svg>`;
    }

    async function showAgent(id) {
      selected = id;
      drawTable();
      document.getElementById("twintitle").textContent = "Twin: entities of " + id;
      const body = document.getElementById("entities");
      try {
        const q = encodeURIComponent(`refDevice=="urn:ngsi-ld:Device:${id}"`);
        const r = await api(`ngsi-ld/v1/entities?q=${q}&limit=100`, { headers: { Link: sdm } });
        if (!r.ok) throw new Error("HTTP " + r.status);
        const rows = [];
        for (const e of await r.json()) {
          for (const [name, a] of Object.entries(e)) {
            if (!a || a.type !== "Property" || typeof a.value !== "number") continue;
            const t = await api(`ngsi-ld/v1/temporal/entities/${encodeURIComponent(e.id)}?attrs=${encodeURIComponent(name)}&lastN=96&format=temporalValues`,
                                  { headers: { Link: sdm } });
            const values = t.ok ? (((await t.json())[name] || {}).values || []).map(p => p[0]).filter(v => typeof v === "number") : [];
            rows.push(`<tr data-sparkline="${esc(e.id)}#${esc(name)}"><td>${esc(e.id.split(":").slice(-1)[0])} <small>(${esc(e.type)})</small></td>`
              + `<td>${esc(name)}</td><td class="num">${a.value} ${esc(a.unitCode || "")}</td><td>${esc(a.observedAt || "-")}</td>`
              + `<td>${sparkline(values)}</td><td class="num">${values.length ? Math.min(...values) + " – " + Math.max(...values) : "-"}</td></tr>`);
          }
        }
        body.innerHTML = rows.join("") || '<tr><td colspan="6">no telemetry yet</td></tr>';
      } catch (e) {
        body.innerHTML = `<tr><td colspan="6">cannot read the twin (${esc(e.message)})</td></tr>`;
      }
    }

    function drawMap(agents) {
      const sites = new Map();
      for (const a of agents) {
        if (a.latitude == null || a.longitude == null) continue;
        const key = a.siteID || a.id;
        const site = sites.get(key) || { id: key, lat: a.latitude, lon: a.longitude, agents: [], worst: "online" };
        site.agents.push(a.id);
        if (rank[a.status] < rank[site.worst]) site.worst = a.status;
        sites.set(key, site);
      }
      const list = [...sites.values()];
      const svg = document.getElementById("map");
      document.getElementById("sitecount").textContent = list.length + " sites";
      if (!list.length) { svg.innerHTML = '<text x="250" y="200" text-anchor="middle" fill="#6b7280">no site positions yet</text>'; return; }
      let [minLat, maxLat, minLon, maxLon] = [90, -90, 180, -180];
      for (const s of list) { minLat = Math.min(minLat, s.lat); maxLat = Math.max(maxLat, s.lat); minLon = Math.min(minLon, s.lon); maxLon = Math.max(maxLon, s.lon); }
      const pad = 0.01, cos = Math.cos((minLat + maxLat) / 2 * Math.PI / 180);
      minLat -= pad; maxLat += pad; minLon -= pad; maxLon += pad;
      const w = 500, h = 400, m = 20;
      const scale = Math.min((w - 2 * m) / ((maxLon - minLon) * cos), (h - 2 * m) / (maxLat - minLat));
      const x = lon => m + (lon - minLon) * cos * scale, y = lat => h - m - (lat - minLat) * scale;
      let out = "";
      for (let i = 1; i < 5; i++) {
        out += `<line x1="0" x2="${w}" y1="${h * i / 5}" y2="${h * i / 5}" stroke="#dde3ea"/><line y1="0" y2="${h}" x1="${w * i / 5}" x2="${w * i / 5}" stroke="#dde3ea"/>`;
      }
      list.sort((a, b) => rank[b.worst] - rank[a.worst]);  // problems drawn last, on top
      for (const s of list) {
        const r = Math.min(9, 3 + Math.sqrt(s.agents.length));
        out += `<circle class="dot-${s.worst}" data-site="${esc(s.id)}" cx="${x(s.lon).toFixed(1)}" cy="${y(s.lat).toFixed(1)}" r="${r.toFixed(1)}" stroke="#fff" stroke-width="1">`
             + `<title>${esc(s.id)}: ${s.agents.length} agent(s), worst ${s.worst}\n${esc(s.agents.slice(0, 12).join(", "))}</title></circle>`;
      }
      // Open alerts: a ring in the severity's colour around where each one is (worst drawn last).
      const placed = alerts.filter(a => a.location).sort((a, b) => severityRank[b.severity] - severityRank[a.severity]);
      for (const a of placed) {
        const [lon, lat] = a.location.coordinates;
        if (lat < minLat || lat > maxLat || lon < minLon || lon > maxLon) continue;
        out += `<circle class="ring ring-${esc(a.severity)}" data-alert-marker="${esc(a.id)}" cx="${x(lon).toFixed(1)}" cy="${y(lat).toFixed(1)}" r="13">`
             + `<title>${esc(a.severity)}: ${esc(headline(a))}</title></circle>`;
      }
      out += `<text x="${m}" y="${h - 5}" font-size="10" fill="#6b7280">${minLat.toFixed(3)}–${maxLat.toFixed(3)} N, ${minLon.toFixed(3)}–${maxLon.toFixed(3)} E</text>`;
      svg.innerHTML = out;
    }

    const headline = a => { const t = a.texts || {}; return (t.en || Object.values(t)[0] || {}).headline || `${a.rule} ${a.entityId}`; };

    function drawAlerts() {
      const rows = [...alerts].sort((a, b) => severityRank[a.severity] - severityRank[b.severity] || b.raisedAt.localeCompare(a.raisedAt));
      document.getElementById("alerttitle").textContent = rows.length ? `Open alerts (${rows.length})` : "Open alerts: none";
      document.getElementById("alertrows").innerHTML = rows.map(a =>
        `<tr data-alert="${esc(a.id)}" data-agent-link="${esc(a.agent || "")}"><td class="status sev-${esc(a.severity)}">${esc(a.severity)}${a.acknowledgedBy ? " ✓" : ""}</td>`
        + `<td>${esc(a.rule)}</td><td>${esc(a.site || a.agent || "-")}</td><td>${esc(a.raisedAt.slice(0, 16).replace("T", " "))}${a.late ? " (late)" : ""}</td>`
        + `<td class="num">${+Number(a.value).toFixed(2)}</td><td class="num">${a.count}</td><td class="headline">${esc(headline(a))}</td></tr>`).join("");
    }

    function drawTable() {
      const q = document.getElementById("filter").value.trim().toLowerCase();
      const rows = fleet
        .filter(a => !q || [a.id, a.siteID, a.status, a.siteKind].some(v => String(v ?? "").toLowerCase().includes(q)))
        .sort((a, b) => rank[a.status] - rank[b.status] || a.id.localeCompare(b.id));
      document.getElementById("agents").innerHTML = rows.map(a => {
        const h = a.health || {};
        return `<tr data-agent="${esc(a.id)}"${a.id === selected ? ' class="selected"' : ""}><td>${esc(a.id)}</td><td class="status status-${a.status}">${a.status}</td>`
          + `<td>${esc(a.siteID || "-")}</td><td>${esc(a.siteKind || "-")}</td><td>${ago(a.secondsSinceLastSeen)}</td>`
          + `<td class="num">${a.readingsBuffered ?? "-"}</td><td class="num">${secs(h.oldestUnsentSeconds)}</td>`
          + `<td class="num">${h.readingsDropped ?? "-"}</td><td class="num">${mb(h.rssBytes)}</td>`
          + `<td class="num">${h.cpuPercent == null ? "-" : h.cpuPercent.toFixed(1) + " %"}</td><td>${esc(a.version || "-")}</td></tr>`;
      }).join("");
    }

    async function refresh() {
      try {
        const response = await api("fleet");
        if (response.status === 401 || response.status === 403) {
          if (!document.getElementById("token")) askToken();
          return;
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        fleet = await response.json();
        const open = await api("alerts?limit=500");
        if (open.ok) alerts = await open.json();
        drawAlerts();
        const counts = { online: 0, stale: 0, offline: 0 };
        for (const a of fleet) counts[a.status]++;
        document.getElementById("counts").innerHTML = `<span>${fleet.length} agents</span>`
          + Object.entries(counts).map(([k, v]) => `<span class="status-${k}">${v} ${k}</span>`).join("")
          + `<span class="status-offline">${alerts.length} open alert${alerts.length === 1 ? "" : "s"}</span>`;
        document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
        document.getElementById("error").style.display = "none";
        drawMap(fleet);
        drawTable();
        // Whether the page fits its window (no sideways scrolling of the page itself), for ops/check-dashboard.
        document.documentElement.dataset.fits = String(document.documentElement.scrollWidth <= window.innerWidth);
      } catch (e) {
        const banner = document.getElementById("error");
        banner.textContent = "Cannot reach the aggregator (" + e.message + "); showing the last known state. Retrying every 2 s.";
        banner.style.display = "block";
      }
    }
    document.getElementById("filter").addEventListener("input", drawTable);
    document.getElementById("agents").addEventListener("click", e => {
      const row = e.target.closest("tr[data-agent]");
      if (row) showAgent(row.dataset.agent);
    });
    document.getElementById("alertrows").addEventListener("click", e => {
      const row = e.target.closest("tr[data-agent-link]");
      if (row && row.dataset.agentLink) showAgent(row.dataset.agentLink);
    });
    refresh();
    setInterval(refresh, 2000);
    // dashboard#agent=<id> opens with that agent's twin shown (links from alerts, headless checks).
    if (params.get("agent")) showAgent(params.get("agent"));
    </script>
    </body>
    </html>
    """#
}
