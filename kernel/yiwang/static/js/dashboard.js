// 工作台 charts: `<div data-widget="dashboard" data-chart="trend|types" data-src="/dashboard/data.json?…">`.
// ECharts is loaded by the widget loader (data-scripts); the numbers come from the JSON route, the
// same numbers the page shows in tables (the charts' text alternative). Clicking a point or a bar
// opens the case list behind it.
(() => {
  const pending = new Map();
  const fetchData = (url) => {
    if (!pending.has(url)) {
      pending.set(url, fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then((r) => {
          if (!r.ok) throw new Error("统计数据加载失败（" + r.status + "）");
          return r.json();
        }));
      // A later swap (another period, another node) fetches afresh.
      setTimeout(() => pending.delete(url), 5000);
    }
    return pending.get(url);
  };

  const palette = ["#1f5fa8", "#2f9e44", "#e8590c", "#ae3ec9", "#f08c00", "#0c8599"];

  const trend = (data) => ({
    color: palette,
    tooltip: { trigger: "axis" },
    legend: { data: ["上报", "结案"], top: 0 },
    grid: { left: 8, right: 16, top: 36, bottom: 8, containLabel: true },
    xAxis: { type: "category", data: data.trend.map((d) => d.day.slice(5)) },
    yAxis: { type: "value", minInterval: 1 },
    series: [
      { name: "上报", type: "line", smooth: true, data: data.trend.map((d) => d.reported) },
      { name: "结案", type: "line", smooth: true, data: data.trend.map((d) => d.closed) },
    ],
  });

  const types = (data) => ({
    color: palette,
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
    grid: { left: 8, right: 24, top: 8, bottom: 8, containLabel: true },
    xAxis: { type: "value", minInterval: 1 },
    yAxis: { type: "category", inverse: true, data: data.types.map((t) => t.label) },
    series: [{ name: "件数", type: "bar", data: data.types.map((t) => t.value), label: { show: true, position: "right" } }],
  });

  const hrefOf = (data, kind, params) => {
    if (kind === "types") return data.types[params.dataIndex].href;
    const day = data.trend[params.dataIndex];
    return params.seriesName === "结案" ? day.closed_href : day.reported_href;
  };

  window.yiwang.widgets.dashboard = (el) => {
    const kind = el.dataset.chart;
    fetchData(el.dataset.src).then((data) => {
      if (!el.isConnected) return;
      const chart = window.echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(kind === "types" ? types(data) : trend(data));
      chart.on("click", (params) => {
        const href = hrefOf(data, kind, params);
        if (href) window.location.assign(href);
      });
      const resize = () => {
        if (!el.isConnected) {
          window.removeEventListener("resize", resize);
          chart.dispose();
          return;
        }
        chart.resize();
      };
      window.addEventListener("resize", resize);
    }).catch((err) => {
      el.setAttribute("role", "alert");
      el.textContent = err.message;
    });
  };
})();
