// The small map on a case page (kernel/yiwang/templates/cases/detail.html): the case's point and,
// when the grid has a boundary, the grid's outline — drawn without any external base map (the
// Content-Security-Policy allows images from this site only), so it works on a closed network.
window.yiwang = window.yiwang || { widgets: {} };
window.yiwang.widgets.casemap = (el) => {
  const lat = parseFloat(el.dataset.lat);
  const lon = parseFloat(el.dataset.lon);
  if (!Number.isFinite(lat) || !Number.isFinite(lon) || !window.L) return;
  const L = window.L;
  const map = L.map(el, { zoomControl: true, attributionControl: false, scrollWheelZoom: false });
  const point = L.circleMarker([lat, lon], { radius: 8, color: "#b00020", weight: 3, fillOpacity: 0.6 })
    .addTo(map)
    .bindTooltip(el.dataset.label || "", { direction: "top" });
  let bounds = L.latLngBounds([point.getLatLng()]);
  if (el.dataset.grid) {
    try {
      const outline = L.geoJSON(JSON.parse(el.dataset.grid), {
        style: { color: "#1f5fa8", weight: 2, fillOpacity: 0.05 },
      }).addTo(map);
      if (el.dataset.gridName) outline.bindTooltip(el.dataset.gridName);
      bounds = bounds.extend(outline.getBounds());
    } catch (err) {
      // A malformed boundary only loses the outline; the point is still shown.
    }
  }
  map.fitBounds(bounds.pad(0.3), { maxZoom: 17 });
  L.control.scale({ imperial: false }).addTo(map);
};
