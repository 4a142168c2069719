// yiwang's own small behaviours (no inline scripts: the Content-Security-Policy forbids them).
document.addEventListener("change", (event) => {
  const el = event.target;
  if (el instanceof HTMLSelectElement && el.hasAttribute("data-autosubmit") && el.form) {
    el.form.requestSubmit();
  }
});

// Forms re-rendered with their (Chinese) errors and refusal pages come back as 4xx: show them in
// place, as a full page load would, instead of htmx's default of ignoring the answer.
document.addEventListener("htmx:beforeSwap", (event) => {
  if ([400, 403, 404, 409, 422].includes(event.detail.xhr.status)) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

// Widgets: an element `<div data-widget="map" data-scripts="/static/vendor/leaflet/leaflet.js
// /static/js/map.js" data-styles="/static/vendor/leaflet/leaflet.css">` loads its scripts (in
// order, once per page) and styles, then `yiwang.widgets.map(el)` is called — on page load and on
// every htmx swap that brings one in. Heavy libraries (ECharts, Leaflet) load only where used.
window.yiwang = window.yiwang || { widgets: {} };
(() => {
  const loaded = new Map();
  const loadScript = (src) => {
    if (!loaded.has(src)) {
      loaded.set(src, new Promise((resolve, reject) => {
        const s = document.createElement("script");
        s.src = src;
        s.onload = resolve;
        s.onerror = () => reject(new Error("无法加载 " + src));
        document.head.appendChild(s);
      }));
    }
    return loaded.get(src);
  };
  const loadStyle = (href) => {
    if (!document.querySelector(`link[rel=stylesheet][href="${href}"]`)) {
      const l = document.createElement("link");
      l.rel = "stylesheet";
      l.href = href;
      document.head.appendChild(l);
    }
  };
  const words = (s) => (s || "").split(/\s+/).filter(Boolean);
  const mount = async (el) => {
    if (el.dataset.mounted) return;
    el.dataset.mounted = "1";
    words(el.dataset.styles).forEach(loadStyle);
    try {
      for (const src of words(el.dataset.scripts)) await loadScript(src);
      const init = window.yiwang.widgets[el.dataset.widget];
      if (!init) throw new Error("未知组件 " + el.dataset.widget);
      init(el);
    } catch (err) {
      el.setAttribute("role", "alert");
      el.textContent = "组件加载失败：" + err.message;
    }
  };
  const scan = (root) => {
    if (root.matches && root.matches("[data-widget]")) mount(root);
    root.querySelectorAll && root.querySelectorAll("[data-widget]").forEach(mount);
  };
  document.addEventListener("DOMContentLoaded", () => scan(document));
  document.addEventListener("htmx:load", (event) => scan(event.target));
})();
