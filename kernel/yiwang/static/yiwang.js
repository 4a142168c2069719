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

// The live inbox badge: htmx's SSE extension swaps each "badge" event in. Where event streams
// fail (no EventSource, a proxy that buffers), fall back to polling the same fragment once a
// minute, marked as a background request so it does not keep an idle session alive.
(() => {
  const POLL_MS = 60000;
  const poll = (el) => {
    if (el.dataset.polling) return;
    el.dataset.polling = "1";
    const url = el.dataset.badgePoll;
    const tick = () => {
      if (!document.body.contains(el)) return;
      fetch(url, { headers: { "X-Yiwang-Background": "1" }, credentials: "same-origin" })
        .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
        .then((html) => { el.innerHTML = html; })
        .catch(() => {})
        .finally(() => setTimeout(tick, POLL_MS));
    };
    tick();
  };
  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-badge-poll]").forEach((el) => {
      if (!("EventSource" in window)) poll(el);
    });
  });
  document.addEventListener("htmx:sseError", (event) => {
    const el = event.target.closest && event.target.closest("[data-badge-poll]");
    if (el) poll(el);
  });
  // The phone menu: a button opens and closes the left menu.
  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("[data-menu-toggle]");
    if (!button) return;
    const menu = document.getElementById(button.getAttribute("aria-controls"));
    const open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", String(open));
    if (menu) menu.classList.toggle("open", open);
  });
})();

// Global search: Ctrl+K (⌘K) or "/" focuses the box from anywhere; arrows walk the
// suggestions; Escape closes them.
(() => {
  const box = () => document.getElementById("global-q");
  const pop = () => document.getElementById("search-pop");
  const typing = (el) => el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
  document.addEventListener("keydown", (event) => {
    const input = box();
    if (!input) return;
    const hotkey = (event.key === "k" && (event.ctrlKey || event.metaKey)) || (event.key === "/" && !typing(event.target));
    if (hotkey) {
      event.preventDefault();
      input.focus();
      input.select();
      return;
    }
    const list = pop();
    if (!list || !list.contains(event.target) && event.target !== input) return;
    const options = Array.from(list.querySelectorAll("[role=option]"));
    const at = options.indexOf(document.activeElement);
    if (event.key === "ArrowDown" && options.length) {
      event.preventDefault();
      options[Math.min(at + 1, options.length - 1)].focus();
    } else if (event.key === "ArrowUp" && options.length) {
      event.preventDefault();
      if (at <= 0) input.focus(); else options[at - 1].focus();
    } else if (event.key === "Escape") {
      list.innerHTML = "";
      input.focus();
    }
  });
  document.addEventListener("input", (event) => {
    if (event.target === box() && !event.target.value.trim() && pop()) pop().innerHTML = "";
  });
  document.addEventListener("click", (event) => {
    const list = pop();
    if (list && !event.target.closest("[data-global-search]")) list.innerHTML = "";
  });
})();
