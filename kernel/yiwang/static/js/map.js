// The grid map (网格地图): child outlines coloured by open cases, clustered case pins, plugins'
// layers as toggles, and a side panel for what is clicked. Loaded by the widget loader in
// yiwang.js after leaflet.js and markercluster.js; the element's data-* attributes say what to
// fetch (see templates/grid/map.html). No basemap unless data-tile-url is set.
(() => {
  // Light to dark by share of the busiest child: readable with or without a basemap.
  const SCALE = ["#e7f0e3", "#fde9a9", "#f9c46b", "#f08c4b", "#d9482b", "#a4161a"];
  const colour = (open, max) => {
    if (open === null || open === undefined) return "#dbe5f1";
    if (!open) return SCALE[0];
    return SCALE[Math.min(SCALE.length - 1, 1 + Math.floor((open / Math.max(max, 1)) * (SCALE.length - 2.001)))];
  };

  const getJSON = async (url) => {
    const res = await fetch(url, { headers: { Accept: "application/geo+json, application/json" } });
    if (!res.ok) throw new Error(`${res.status}`);
    return res.json();
  };

  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  };

  const panelOf = (root) => root.closest(".map-view")?.querySelector(".map-panel");
  const noteOf = (root) => root.closest(".map-view")?.querySelector(".map-note");

  const showPanel = (root, url) => {
    const panel = panelOf(root);
    if (!panel || !url) return;
    if (window.htmx) {
      window.htmx.ajax("GET", url, { target: panel, swap: "innerHTML" }).then(() => {
        panel.scrollIntoView({ block: "nearest", behavior: "smooth" });
      });
    } else {
      window.location.href = url;
    }
  };

  // A plugin feature's panel is drawn here from its properties (text only, never HTML).
  const showProps = (root, props) => {
    const panel = panelOf(root);
    if (!panel) return;
    panel.replaceChildren();
    panel.appendChild(el("h2", props.title || ""));
    if (Array.isArray(props.lines) && props.lines.length) {
      const ul = el("ul", undefined, "map-lines");
      props.lines.forEach((line) => ul.appendChild(el("li", String(line))));
      panel.appendChild(ul);
    }
    if (props.href && String(props.href).startsWith("/")) {
      const a = el("a", "查看详情", "button");
      a.href = props.href;
      panel.appendChild(el("p", undefined, "actions")).appendChild(a);
    }
    panel.scrollIntoView({ block: "nearest", behavior: "smooth" });
  };

  const setNote = (root, text) => {
    const note = noteOf(root);
    if (note) note.textContent = text || "";
  };

  const pinIcon = (cls) => L.divIcon({ className: `map-pin ${cls || ""}`, iconSize: [14, 14] });

  const pointLayer = (data, root, cls, onClick) => {
    const group = L.markerClusterGroup({ showCoverageOnHover: false, maxClusterRadius: 50 });
    L.geoJSON(data, {
      pointToLayer: (f, latlng) => L.marker(latlng, { icon: pinIcon(cls), title: f.properties.title || "", keyboard: true }),
      onEachFeature: (f, layer) => layer.on("click", () => onClick(f.properties)),
    }).eachLayer((m) => group.addLayer(m));
    return group;
  };

  window.yiwang.widgets.map = async (root) => {
    root.replaceChildren();
    // Clustering needs a maxZoom, which a map without a tile layer does not otherwise have.
    const map = L.map(root, { zoomControl: true, attributionControl: true, minZoom: 3, maxZoom: 18 });
    map.attributionControl.setPrefix("");
    if (root.dataset.tileUrl) {
      L.tileLayer(root.dataset.tileUrl, { attribution: root.dataset.attribution || "", maxZoom: 19 }).addTo(map);
    } else {
      root.classList.add("no-basemap");
    }
    map.setView([23.8, 108.8], 6);
    const notes = [];

    // 1. outlines of the node and its children
    try {
      const data = await getJSON(root.dataset.nodesUrl);
      const opens = data.features.filter((f) => f.properties.role === "child").map((f) => f.properties.open || 0);
      const max = Math.max(0, ...opens);
      const outlines = L.geoJSON(data, {
        style: (f) => f.properties.role === "self"
          ? { color: "#1f4e8c", weight: 2, dashArray: "6 4", fill: false, interactive: false }
          : { color: "#1f4e8c", weight: 1.2, fillColor: colour(f.properties.open, max), fillOpacity: 0.55 },
        pointToLayer: (f, latlng) => L.circleMarker(latlng, { radius: 8, color: "#1f4e8c", fillColor: colour(f.properties.open, max), fillOpacity: 0.8 }),
        onEachFeature: (f, layer) => {
          const p = f.properties;
          if (p.role === "self") return;
          const label = p.open === null || p.open === undefined ? p.name : `${p.name} ${p.open}`;
          layer.bindTooltip(label, { permanent: data.features.length <= 40, direction: "center", className: "map-label" });
          layer.on("click", () => showPanel(root, p.panel));
        },
      }).addTo(map);
      const bounds = outlines.getBounds();
      if (bounds.isValid()) map.fitBounds(bounds, { padding: [12, 12] });
      if (!data.features.some((f) => f.geometry)) notes.push("本区域的节点还没有边界数据，地图只能显示事件。");
    } catch (err) {
      notes.push("区域边界加载失败（" + (err.message || err) + "）。");
    }

    // 2. toggles: open cases, then plugins' layers
    const controls = root.closest(".map-view")?.querySelector(".map-controls");
    const toggles = new Map();
    const addToggle = (key, load) => {
      let layer = null;
      const on = async () => {
        try {
          layer = layer || await load();
          layer.addTo(map);
        } catch (err) {
          setNote(root, "图层加载失败（" + (err.message || err) + "）。");
        }
      };
      toggles.set(key, { on, off: () => layer && map.removeLayer(layer) });
    };
    if (root.dataset.casesUrl) {
      addToggle("cases", async () => {
        const data = await getJSON(root.dataset.casesUrl);
        if (data.truncated && data.note) setNote(root, data.note);
        return pointLayer(data, root, "case", (p) => showPanel(root, p.panel));
      });
    }
    let layers = [];
    try { layers = JSON.parse(root.dataset.layers || "[]"); } catch (_) { layers = []; }
    layers.forEach((spec) => {
      const label = el("label");
      const box = el("input");
      box.type = "checkbox";
      box.dataset.layer = spec.name;
      label.append(box, " " + spec.title);
      controls?.appendChild(label);
      addToggle(spec.name, async () => {
        const sep = spec.url.includes("?") ? "&" : "?";
        const data = await getJSON(`${spec.url}${sep}node=${encodeURIComponent(root.dataset.node)}`);
        if (data.truncated && data.note) setNote(root, data.note);
        if (spec.kind === "polygons") {
          return L.geoJSON(data, {
            style: { color: "#6b3fa0", weight: 1.5, fillOpacity: 0.15 },
            onEachFeature: (f, layer) => layer.on("click", () => showProps(root, f.properties)),
          });
        }
        return pointLayer(data, root, "plugin", (p) => showProps(root, p));
      });
    });
    controls?.querySelectorAll("input[data-layer]").forEach((box) => {
      const t = toggles.get(box.dataset.layer);
      if (!t) return;
      box.addEventListener("change", () => (box.checked ? t.on() : t.off()));
      if (box.checked) t.on();
    });
    if (notes.length) setNote(root, notes.join(" "));
    // The container may have been laid out after the map was made (htmx swap, phone rotation).
    // An observer on the element goes with it when htmx swaps the page out.
    new ResizeObserver(() => map.invalidateSize()).observe(root);
  };
})();
